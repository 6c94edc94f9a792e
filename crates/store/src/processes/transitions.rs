//! The transitions of a process after it was accepted: started, completed
//! with its counts, failed; each guarded by `status in ('queued',
//! 'in_process')`, so a final process never changes again.

use objectsync_model::{OrgId, ProcessId, ProcessStatus};

use super::row::{Counts, parse};
use crate::{GenericClient, StoreResult};

/// Marks the process `in_process` and records which delivery this is and
/// when it arrived (idempotent, so retries within one delivery do not count
/// twice). A batch that gave its place back arrives as the copy put at the
/// end of its queue then, so `came_round_at` takes that time (see
/// [`crate::waits`]). Returns whether it is open: `false` if no open process
/// is visible (not committed yet, rolled back, or already final).
///
/// Its commit does not wait for the WAL flush (`synchronous_commit` off for
/// this statement's transaction alone): the batch's apply transaction
/// commits synchronously after it and flushes it too, and if the server
/// crashes before, what is lost is only that the batch had started — its
/// message comes again and starts it again. A lone batch saves a flush
/// wait; under load, a place in the queue of commits. Call it on a client
/// outside a transaction: inside one, the setting would hold for the whole
/// transaction's commit.
pub async fn mark_started(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    delivery: i32,
) -> StoreResult<bool> {
    let changed = crate::execute(
        c,
        "update processes
            set status = 'in_process',
                started_at = coalesce(started_at, clock.now),
                deliveries = greatest(deliveries, $3),
                last_delivery_at = clock.now,
                came_round_at = gave_way_at
           from (select pg_current_xact_id() as xid, clock_timestamp() as now,
                        set_config('synchronous_commit', 'off', true) as flush) as clock
          where org_id = $1 and id = $2 and status in ('queued', 'in_process')",
        &[&org, &id, &delivery],
    )
    .await?;
    Ok(changed > 0)
}

/// The status of a process, if it is visible.
pub async fn status(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
) -> StoreResult<Option<ProcessStatus>> {
    crate::query_opt(
        c,
        "select status::text from processes where org_id = $1 and id = $2",
        &[&org, &id],
    )
    .await?
    .map(|r| parse(r.get(0)))
    .transpose()
}

/// Locks the process row for the rest of the transaction; its status, or
/// `None` if no such process is visible.
pub async fn lock(
    tx: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
) -> StoreResult<Option<ProcessStatus>> {
    crate::query_opt(
        tx,
        "select status::text from processes where org_id = $1 and id = $2 for update",
        &[&org, &id],
    )
    .await?
    .map(|r| parse(r.get(0)))
    .transpose()
}

/// Where the transaction that created a process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XactStatus {
    InProgress,
    Committed,
    /// Rolled back, or too old to know (then its process would be visible).
    Aborted,
}

/// Asks PostgreSQL where transaction `xact` stands.
pub async fn xact_status(c: &impl GenericClient, xact: u64) -> StoreResult<XactStatus> {
    let status: Option<String> = crate::query_one(
        c,
        "select pg_xact_status($1::text::xid8)",
        &[&xact.to_string()],
    )
    .await?
    .get(0);
    Ok(match status.as_deref() {
        Some("in progress") => XactStatus::InProgress,
        Some("committed") => XactStatus::Committed,
        _ => XactStatus::Aborted,
    })
}

/// Marks the process `completed` with its counts, in the transaction that
/// applied the batch.
pub async fn complete(
    tx: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    counts: &Counts,
    delivery: i32,
) -> StoreResult<()> {
    crate::execute(
        tx,
        "update processes
            set status = 'completed',
                -- The message can outrun ingest's commit, so mark_started
                -- may have found no row to mark.
                started_at = coalesce(started_at, clock.began),
                deliveries = greatest(deliveries, $11),
                records_processed = $3,
                records_created = $4,
                records_updated = $5,
                records_deleted = $6,
                records_failed = $7,
                links_created = $8,
                links_removed = $9,
                links_failed = $10,
                completed_at = clock.now,
                last_error = null,
                footprint_keys = null,
                waiting_for = null
           from (select pg_current_xact_id() as xid, now() as began, clock_timestamp() as now) as clock
          where org_id = $1 and id = $2",
        &[
            &org,
            &id,
            &counts.processed,
            &counts.created,
            &counts.updated,
            &counts.deleted,
            &counts.failed,
            &counts.links.created,
            &counts.links.removed,
            &counts.links.failed,
            &delivery,
        ],
    )
    .await
    .map(drop)
}

/// Notes why a delivery failed, so that if the batch is later dead-lettered
/// its process says why.
pub async fn record_attempt_error(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    reason: &str,
) -> StoreResult<()> {
    crate::execute(
        c,
        "update processes set last_error = $3
          where org_id = $1 and id = $2 and status in ('queued', 'in_process')",
        &[&org, &id, &reason],
    )
    .await
    .map(drop)
}

/// Marks a process `failed` with `reason`, unless it already ended. Returns
/// whether it changed.
pub async fn fail(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    reason: &str,
) -> StoreResult<bool> {
    fail_with(c, org, id, reason, "$3").await
}

/// Like [`fail`], with the last delivery's failure (if one was recorded)
/// appended to `reason`: for the dead-letter tracker, which knows only that
/// the broker gave up.
pub async fn fail_with_last_error(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    reason: &str,
) -> StoreResult<bool> {
    fail_with(c, org, id, reason, "$3 || coalesce(': ' || last_error, '')").await
}

async fn fail_with(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    reason: &str,
    error_sql: &str,
) -> StoreResult<bool> {
    let sql = format!(
        "update processes
            set status = 'failed', error = {error_sql}, completed_at = clock.now,
                footprint_keys = null, waiting_for = null
           from (select pg_current_xact_id() as xid, clock_timestamp() as now) as clock
          where org_id = $1 and id = $2 and status in ('queued', 'in_process')"
    );
    Ok(crate::execute(c, &sql, &[&org, &id, &reason]).await? > 0)
}
