//! The outbox of completion events (`process_events`): a row is written by
//! a trigger in the transaction that ends a process (migration V38), and
//! the workers' relays take rows, publish them, and delete them once the
//! broker confirmed. Relays share the rows with `for update skip locked`,
//! so any number run side by side and each row is published by one of them
//! at a time.

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, ProcessEvent, ProcessId};
use uuid::Uuid;

use crate::processes::{COLUMN_COUNT, COLUMNS, from_row};
use crate::{GenericClient, StoreResult};

/// An event not published yet.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// Its place in the outbox.
    pub seq: i64,
    /// The event's id, drawn when the process ended: every copy of the
    /// event carries it.
    pub id: Uuid,
    pub org_id: OrgId,
    pub process_id: ProcessId,
    /// The event's body; `None` if its process is no longer kept.
    pub event: Option<ProcessEvent>,
    /// When its process ended.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Up to `limit` events not published yet, oldest first, each with its
/// process's report, locked for the caller's transaction; rows other
/// relays hold are skipped.
pub async fn take(tx: &impl GenericClient, limit: i64) -> StoreResult<Vec<PendingEvent>> {
    let sql = format!(
        "select p.*, e.seq, e.id, e.org_id, e.process_id
           from process_events e
           left join lateral (
                select {COLUMNS} from processes
                 where org_id = e.org_id and id = e.process_id) p on true
          order by e.seq
          limit $1
            for update of e skip locked"
    );
    let n = COLUMN_COUNT;
    let rows = crate::query(tx, &sql, &[&limit]).await?;
    rows.iter()
        .map(|r| {
            let org_id: OrgId = r.get(n + 2);
            let process = match r.get::<_, Option<ProcessId>>(0) {
                Some(_) => Some(from_row(r)?),
                None => None,
            };
            Ok(PendingEvent {
                seq: r.get(n),
                id: r.get(n + 1),
                org_id,
                process_id: r.get(n + 3),
                event: process.as_ref().map(|p| p.event(org_id)),
                ended_at: process.and_then(|p| p.completed_at),
            })
        })
        .collect()
}

/// Removes published events (the broker confirmed them).
pub async fn sent(tx: &impl GenericClient, seqs: &[i64]) -> StoreResult<u64> {
    crate::execute(
        tx,
        "delete from process_events where seq = any($1)",
        &[&seqs],
    )
    .await
}

/// Events not published yet (a gauge, and for tests).
pub async fn backlog(c: &impl GenericClient) -> StoreResult<i64> {
    Ok(
        crate::query_one(c, "select count(*) from process_events", &[])
            .await?
            .get(0),
    )
}
