//! The `webhook_deliveries` table: one row per event and webhook, written
//! with the event (migration V38), taken by workers when due, deleted once
//! delivered, kept once failed for operators to read and resend.
//!
//! A worker takes a delivery by pushing its `next_attempt_at` past the time
//! an attempt can take (its *lease*) and counting the attempt, in one
//! statement; then it POSTs, and writes the outcome. A worker that dies
//! mid-attempt leaves the delivery to be taken again once the lease is
//! over, as one more attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, ProcessEvent, ProcessId};
use uuid::Uuid;

use crate::processes::{COLUMN_COUNT, COLUMNS, from_row};
use crate::{GenericClient, StoreResult};

/// A delivery taken for an attempt.
#[derive(Debug, Clone)]
pub struct Taken {
    pub id: i64,
    pub webhook_id: i64,
    pub url: String,
    /// The key that signs it.
    pub secret: Vec<u8>,
    /// The event's id: `webhook-id`, the same on every attempt.
    pub event_id: Uuid,
    pub org_id: OrgId,
    pub process_id: ProcessId,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// The body; `None` if the process is no longer kept.
    pub event: Option<ProcessEvent>,
    /// When its process ended.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Takes up to `total` due deliveries: of each webhook, up to its free
/// slots — `slots` less the attempts `busy` lists for it (pairs of webhook
/// id and attempts in flight) — oldest first, so that one endpoint's
/// backlog never fills the batch; webhooks are visited in random order,
/// so none is always served last. Each delivery is leased for `lease`;
/// its retries end `retry_for` after its first attempt.
///
/// Each call probes every webhook's due deliveries once (an index probe
/// each): cheap for the hundreds of webhooks an installation has.
pub async fn take(
    c: &impl GenericClient,
    slots: i32,
    busy: &[(i64, i32)],
    total: i64,
    lease: Duration,
    retry_for: Duration,
) -> StoreResult<Vec<Taken>> {
    let (busy_ids, busy_n): (Vec<i64>, Vec<i32>) = busy.iter().copied().unzip();
    let sql = format!(
        "with due as (
              select d.id
                from (select id from webhooks order by random()) w
               cross join lateral (
                     select id from webhook_deliveries
                      where webhook_id = w.id and failed_at is null
                        and next_attempt_at <= now()
                      order by next_attempt_at
                      limit greatest($1 - coalesce(
                            (select b.n from unnest($2::int8[], $3::int4[]) as b (id, n)
                              where b.id = w.id), 0), 0)
                        for update skip locked) d
               limit $6),
         taken as (
              update webhook_deliveries d
                 set attempts = d.attempts + 1,
                     last_attempt_at = now(),
                     next_attempt_at = now() + make_interval(secs => $4),
                     retry_until = coalesce(d.retry_until, now() + make_interval(secs => $5))
                from due
               where d.id = due.id
           returning d.id, d.webhook_id, d.event_id, d.org_id, d.process_id, d.attempts)
         select p.*, t.id, t.webhook_id, w.url, w.secret, t.event_id, t.org_id, t.process_id,
                t.attempts
           from taken t
           join webhooks w on w.id = t.webhook_id
           left join lateral (
                select {COLUMNS} from processes
                 where org_id = t.org_id and id = t.process_id) p on true"
    );
    let rows = crate::query(
        c,
        &sql,
        &[
            &slots,
            &busy_ids,
            &busy_n,
            &lease.as_secs_f64(),
            &retry_for.as_secs_f64(),
            &total,
        ],
    )
    .await?;
    let n = COLUMN_COUNT;
    rows.iter()
        .map(|r| {
            let org_id: OrgId = r.get(n + 5);
            let process = match r.get::<_, Option<ProcessId>>(0) {
                Some(_) => Some(from_row(r)?),
                None => None,
            };
            Ok(Taken {
                id: r.get(n),
                webhook_id: r.get(n + 1),
                url: r.get(n + 2),
                secret: r.get(n + 3),
                event_id: r.get(n + 4),
                org_id,
                process_id: r.get(n + 6),
                attempts: r.get(n + 7),
                event: process.as_ref().map(|p| p.event(org_id)),
                ended_at: process.and_then(|p| p.completed_at),
            })
        })
        .collect()
}

/// The delivery got a 2xx: it is done, and removed.
pub async fn delivered(c: &impl GenericClient, id: i64) -> StoreResult<()> {
    crate::execute(c, "delete from webhook_deliveries where id = $1", &[&id])
        .await
        .map(drop)
}

/// The attempt failed with `error`: the delivery is tried again after
/// `retry_in`, or, once its retries are over, failed. Returns whether it
/// failed for good.
pub async fn attempt_failed(
    c: &impl GenericClient,
    id: i64,
    error: &str,
    retry_in: Duration,
) -> StoreResult<bool> {
    let row = crate::query_opt(
        c,
        "update webhook_deliveries
            set last_error = $2,
                next_attempt_at = now() + make_interval(secs => $3),
                failed_at = case when now() >= retry_until then now() end
          where id = $1
         returning failed_at is not null",
        &[&id, &error, &retry_in.as_secs_f64()],
    )
    .await?;
    Ok(row.is_some_and(|r| r.get(0)))
}

/// Fails a delivery at once, with `error` (nothing to deliver any more).
pub async fn give_up(c: &impl GenericClient, id: i64, error: &str) -> StoreResult<()> {
    crate::execute(
        c,
        "update webhook_deliveries set last_error = $2, failed_at = now() where id = $1",
        &[&id, &error],
    )
    .await
    .map(drop)
}

/// A delivery that failed for good.
#[derive(Debug, Clone)]
pub struct Failed {
    pub id: i64,
    pub webhook_id: i64,
    pub url: String,
    pub event_id: Uuid,
    pub process_id: ProcessId,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub failed_at: DateTime<Utc>,
}

/// The newest `limit` failed deliveries of `org`'s webhooks.
pub async fn failed(c: &impl GenericClient, org: OrgId, limit: i64) -> StoreResult<Vec<Failed>> {
    let rows = crate::query(
        c,
        "select d.id, d.webhook_id, w.url, d.event_id, d.process_id, d.attempts,
                d.last_error, d.failed_at
           from webhooks w
          cross join lateral (
                select * from webhook_deliveries
                 where webhook_id = w.id and failed_at is not null
                 order by failed_at desc
                 limit $2) d
          where w.org_id = $1
          order by d.failed_at desc, d.id desc
          limit $2",
        &[&org, &limit],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Failed {
            id: r.get(0),
            webhook_id: r.get(1),
            url: r.get(2),
            event_id: r.get(3),
            process_id: r.get(4),
            attempts: r.get(5),
            last_error: r.get(6),
            failed_at: r.get(7),
        })
        .collect())
}

/// Sends failed delivery `id` of `org` again: it is due now, with a fresh
/// set of retries. Whether there was such a failed delivery.
pub async fn resend(c: &impl GenericClient, org: OrgId, id: i64) -> StoreResult<bool> {
    Ok(crate::execute(
        c,
        "update webhook_deliveries
            set failed_at = null, attempts = 0, retry_until = null, next_attempt_at = now()
          where id = $1 and org_id = $2 and failed_at is not null",
        &[&id, &org],
    )
    .await?
        > 0)
}

/// Deliveries of webhook `id` still to be made, counted up to `cap`.
pub async fn pending(c: &impl GenericClient, webhook: i64, cap: i64) -> StoreResult<i64> {
    Ok(crate::query_one(
        c,
        "select count(*) from (
             select 1 from webhook_deliveries
              where webhook_id = $1 and failed_at is null limit $2) d",
        &[&webhook, &cap],
    )
    .await?
    .get(0))
}

/// Removes up to `limit` deliveries that failed more than `older_than` ago,
/// oldest first (retention); how many. Pending ones are never removed.
pub async fn sweep_failed(
    c: &impl GenericClient,
    older_than: Duration,
    limit: i64,
) -> StoreResult<u64> {
    crate::execute(
        c,
        "delete from webhook_deliveries
          where id = any(array(
                select id from webhook_deliveries
                 where failed_at is not null
                   and failed_at < now() - make_interval(secs => $1)
                 order by failed_at limit $2))",
        &[&older_than.as_secs_f64(), &limit],
    )
    .await
}
