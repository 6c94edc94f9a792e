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
//! Operators read it on the console ([`of`], [`blocked_count`]).

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
                                     else clock_timestamp() end,
                waiting_for = $3
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
        "update processes set gave_way_at = clock_timestamp()
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
