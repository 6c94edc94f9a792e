//! State changes of a process row.
//!
//! `queued → in_process` is committed on its own as soon as a worker picks a
//! batch up, so clients see progress; `in_process → completed` is committed
//! with the batch's effects; `→ failed` is written when the batch is
//! dead-lettered. A process that reached `completed` or `failed` never moves
//! again.

use deadpool_postgres::Object;
use deadpool_postgres::Transaction;
use objectsync_model::{BatchMeta, ProcessStatus};
use tokio_postgres::GenericClient;

use super::{Counts, ErrorRow};
use crate::error::WorkerError;

/// Marks the process `in_process` and records which delivery this is
/// (idempotent, so retries within one delivery do not count twice).
pub(super) async fn mark_started(
    client: &Object,
    meta: &BatchMeta,
    delivery: u32,
) -> Result<(), WorkerError> {
    let stmt = client
        .prepare_cached(
            "update processes
                set status = 'in_process',
                    started_at = coalesce(started_at, clock_timestamp()),
                    deliveries = greatest(deliveries, $3),
                    last_delivery_at = clock_timestamp()
              where org_id = $1 and id = $2 and status in ('queued', 'in_process')",
        )
        .await?;
    client
        .execute(
            &stmt,
            &[
                &meta.org_id,
                &meta.process_id,
                &i32::try_from(delivery).unwrap_or(i32::MAX),
            ],
        )
        .await?;
    Ok(())
}

/// Locks the process row for the rest of the transaction; its status, or
/// `None` if no such process is visible.
pub(super) async fn lock(
    tx: &Transaction<'_>,
    meta: &BatchMeta,
) -> Result<Option<ProcessStatus>, WorkerError> {
    let stmt = tx
        .prepare_cached(
            "select status::text from processes where org_id = $1 and id = $2 for update",
        )
        .await?;
    let row = tx
        .query_opt(&stmt, &[&meta.org_id, &meta.process_id])
        .await?;
    row.map(|r| {
        r.get::<_, &str>(0)
            .parse::<ProcessStatus>()
            .map_err(WorkerError::Permanent)
    })
    .transpose()
}

/// What to do with a batch whose process row is not visible: wait while the
/// transaction that creates it is still running; drop it once that
/// transaction is known to have rolled back (its client got an error).
pub(super) async fn missing(
    tx: &Transaction<'_>,
    meta: &BatchMeta,
) -> Result<super::Handled, WorkerError> {
    let status: Option<String> = tx
        .query_one(
            "select pg_xact_status($1::text::xid8)",
            &[&meta.xact_id.to_string()],
        )
        .await?
        .get(0);
    match status.as_deref() {
        // Committed means it became visible after our lock query: look again.
        Some("in progress" | "committed") => Err(WorkerError::NotYet(meta.process_id)),
        _ => Ok(super::Handled::Orphan),
    }
}

pub(super) async fn write_errors(
    tx: &Transaction<'_>,
    meta: &BatchMeta,
    errors: &[ErrorRow],
) -> Result<(), WorkerError> {
    if errors.is_empty() {
        return Ok(());
    }
    let positions: Vec<i32> = (0..).take(errors.len()).collect();
    let indexes: Vec<i32> = errors.iter().map(|e| e.index).collect();
    let identifiers: Vec<&serde_json::Value> = errors.iter().map(|e| &e.identifiers).collect();
    let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    let stmt = tx
        .prepare_cached(
            "insert into process_errors
                    (org_id, process_id, position, record_index, identifiers, code, message)
             select $1, $2, u.pos, u.idx, u.ids, u.code, u.msg
               from unnest($3::int4[], $4::int4[], $5::jsonb[], $6::text[], $7::text[])
                 as u(pos, idx, ids, code, msg)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &meta.org_id,
            &meta.process_id,
            &positions,
            &indexes,
            &identifiers,
            &codes,
            &messages,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn complete(
    tx: &Transaction<'_>,
    meta: &BatchMeta,
    counts: &Counts,
    delivery: u32,
) -> Result<(), WorkerError> {
    let stmt = tx
        .prepare_cached(
            "update processes
                set status = 'completed',
                    -- The message can outrun ingest's commit, so mark_started
                    -- may have found no row to mark.
                    started_at = coalesce(started_at, now()),
                    deliveries = greatest(deliveries, $11),
                    records_processed = $3,
                    records_created = $4,
                    records_updated = $5,
                    records_deleted = $6,
                    records_failed = $7,
                    links_created = $8,
                    links_removed = $9,
                    links_failed = $10,
                    completed_at = clock_timestamp(),
                    last_error = null
              where org_id = $1 and id = $2",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &meta.org_id,
            &meta.process_id,
            &counts.processed,
            &counts.created,
            &counts.updated,
            &counts.deleted,
            &counts.failed,
            &counts.links.created,
            &counts.links.removed,
            &counts.links.failed,
            &i32::try_from(delivery).unwrap_or(i32::MAX),
        ],
    )
    .await?;
    Ok(())
}

/// Notes why a delivery failed, so that if the batch is later dead-lettered
/// its process says why. Best effort: the database may be what failed.
pub(crate) async fn record_attempt_error(
    client: &impl GenericClient,
    org_id: i64,
    process_id: i64,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "update processes set last_error = $3
              where org_id = $1 and id = $2 and status in ('queued', 'in_process')",
            &[&org_id, &process_id, &reason],
        )
        .await
        .map(|_| ())
}

/// Marks a process `failed` unless it already ended. With
/// `append_last_error`, the last delivery's failure is added to `reason`
/// (the dead-letter tracker knows only that the broker gave up).
/// Returns whether the row changed.
pub(crate) async fn mark_failed(
    client: &impl GenericClient,
    org_id: i64,
    process_id: i64,
    reason: &str,
    append_last_error: bool,
) -> Result<bool, tokio_postgres::Error> {
    let n = client
        .execute(
            "update processes
                set status = 'failed',
                    error = case when $4 and last_error is not null
                                 then $3 || ': ' || last_error
                                 else $3 end,
                    completed_at = clock_timestamp()
              where org_id = $1 and id = $2 and status in ('queued', 'in_process')",
            &[&org_id, &process_id, &reason, &append_last_error],
        )
        .await?;
    Ok(n > 0)
}
