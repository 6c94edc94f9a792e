//! What batches wait for in acceptance order (see [`crate::order`]), and the
//! processes that keep them waiting.
//!
//! A batch that has waited a second for older batches of its organization
//! (or gives its place back sooner) notes on its process the oldest one it
//! waits for ([`note_waiting`]); when it gives its place back, the time a
//! copy of its message went to the end of its queue ([`note_gave_way`]),
//! which the next delivery of that copy carries into `came_round_at`
//! (`processes::mark_started`). Batches that do not wait that long write
//! nothing here, so applying them costs what it did.
//!
//! Operators read it on the console ([`of`], [`blocked_count`]); the
//! stale-process monitor uses it to tell a process whose message is gone
//! from one whose message is only late ([`lost_candidates`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, ProcessId};

use crate::{GenericClient, StoreResult};

/// Notes that process `id` of `org` waits for `blocker`, the oldest older
/// open process in its way. `waiting_since` keeps its time while the
/// blocker stays the same, across deliveries.
pub async fn note_waiting(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    blocker: ProcessId,
) -> StoreResult<()> {
    crate::execute(
        c,
        "update processes
            set waiting_since = case when waiting_for = $3 then waiting_since
                                     else clock.now end,
                waiting_for = $3
           from (select pg_current_xact_id() as xid, clock_timestamp() as now) as clock
          where org_id = $1 and id = $2 and status in ('queued', 'in_process')",
        &[&org, &id, &blocker],
    )
    .await
    .map(drop)
}

/// Notes that a copy of process `id`'s message has just been put at the end
/// of its queue (it gave its place back).
pub async fn note_gave_way(c: &impl GenericClient, org: OrgId, id: ProcessId) -> StoreResult<()> {
    crate::execute(
        c,
        "update processes set gave_way_at = clock.now
           from (select pg_current_xact_id() as xid, clock_timestamp() as now) as clock
          where org_id = $1 and id = $2 and status in ('queued', 'in_process')",
        &[&org, &id],
    )
    .await
    .map(drop)
}

/// Open processes waiting for an older process that is still open: the
/// batches blocked now. Reads the open processes only
/// (`processes_open_idx`) and looks each waited-for process up by its key.
pub async fn blocked_count(c: &impl GenericClient) -> StoreResult<i64> {
    Ok(crate::query_one(
        c,
        "select count(*) from processes b
          where b.status in ('queued', 'in_process') and b.waiting_for is not null
            and exists (select 1 from processes p
                         where p.org_id = b.org_id and p.id = b.waiting_for
                           and p.status in ('queued', 'in_process'))",
        &[],
    )
    .await?
    .get(0))
}

/// What one process waits for, and how many wait for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waits {
    /// The older process it waits for (still open), and since when.
    pub waiting_for: Option<(ProcessId, DateTime<Utc>)>,
    /// Open later batches of its organization waiting for it.
    pub waited_on_by: i64,
}

/// What process `id` of `org` waits for and how many wait for it; the
/// second reads the organization's open processes after it
/// (`processes_open_by_org_idx`).
pub async fn of(c: &impl GenericClient, org: OrgId, id: ProcessId) -> StoreResult<Waits> {
    let row = crate::query_opt(
        c,
        "select p.id, b.waiting_since,
                (select count(*) from processes w
                  where w.org_id = $1 and w.id > $2 and w.status in ('queued', 'in_process')
                    and w.waiting_for = $2)
           from processes b
           left join processes p on p.org_id = b.org_id and p.id = b.waiting_for
                                and p.status in ('queued', 'in_process')
          where b.org_id = $1 and b.id = $2 and b.status in ('queued', 'in_process')",
        &[&org, &id],
    )
    .await?;
    Ok(match row {
        None => Waits::default(),
        Some(r) => Waits {
            waiting_for: r
                .get::<_, Option<ProcessId>>(0)
                .zip(r.get::<_, Option<DateTime<Utc>>>(1)),
            waited_on_by: r.get(2),
        },
    })
}

/// An open process that keeps later batches waiting and has not been
/// delivered for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocking {
    pub org_id: OrgId,
    pub id: ProcessId,
    pub status: String,
    pub deliveries: i32,
    /// Open batches waiting for it.
    pub waiters: i64,
    /// Since when the first of them waits for it.
    pub waited_since: DateTime<Utc>,
    /// Its last delivery, or its acceptance if it was never delivered.
    pub last_seen: DateTime<Utc>,
}

/// Open processes whose message may be gone, going by what the batches
/// waiting for them saw: for `after`, the process has had no delivery and a
/// later batch has waited for it; and a copy of one of those batches put at
/// the end of its queue within the last half of `after` (later than the
/// process's last delivery) has been delivered since, so every message that
/// was waiting in that queue then has been delivered — and this process's
/// was not among them. Only a waiting batch published to the same queue as
/// the process proves anything about it (an organization's batches may sit
/// in the express queue and a bulk one). The caller still checks that no
/// worker holds it.
pub async fn lost_candidates(
    c: &impl GenericClient,
    after: Duration,
) -> StoreResult<Vec<Blocking>> {
    Ok(crate::query(
        c,
        "select p.org_id, p.id, p.status::text, p.deliveries, count(*),
                min(b.waiting_since), coalesce(p.last_delivery_at, p.created_at)
           from processes b
           join processes p on p.org_id = b.org_id and p.id = b.waiting_for
          where b.status in ('queued', 'in_process') and b.waiting_for is not null
            and p.status in ('queued', 'in_process')
            and b.queue is not distinct from p.queue
            and coalesce(p.last_delivery_at, p.created_at) < now() - make_interval(secs => $1)
          group by p.org_id, p.id
         having min(b.waiting_since) < now() - make_interval(secs => $1)
            and max(b.came_round_at) > now() - make_interval(secs => $1 / 2)
            and max(b.came_round_at) > coalesce(p.last_delivery_at, p.created_at)
          order by p.org_id, p.id",
        &[&after.as_secs_f64()],
    )
    .await?
    .iter()
    .map(|r| Blocking {
        org_id: r.get(0),
        id: r.get(1),
        status: r.get(2),
        deliveries: r.get(3),
        waiters: r.get(4),
        waited_since: r.get(5),
        last_seen: r.get(6),
    })
    .collect())
}

/// Fails process `id` of `org` with `reason` if it is still open and still
/// has had no delivery for `after`: a delivery that arrives meanwhile wins.
pub async fn fail_lost(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    after: Duration,
    reason: &str,
) -> StoreResult<bool> {
    Ok(crate::execute(
        c,
        "update processes
            set status = 'failed', error = $4, completed_at = clock.now,
                footprint_keys = null, waiting_for = null
           from (select pg_current_xact_id() as xid, clock_timestamp() as now) as clock
          where org_id = $1 and id = $2 and status in ('queued', 'in_process')
            and coalesce(last_delivery_at, created_at) < now() - make_interval(secs => $3)",
        &[&org, &id, &after.as_secs_f64(), &reason],
    )
    .await?
        > 0)
}
