//! Ending an open process from outside its batch's delivery: an operator
//! fails it ([`fail_by_operator`]), or a message names it under another
//! organization than its own ([`owner`]).
//!
//! A failed process is final like any other: if its message turns up later,
//! the worker finds it so, acknowledges the message and applies nothing.

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, ProcessId, ProcessStatus};

use crate::{GenericClient, StoreResult};

/// The organization process `id` belongs to, if it exists. Process ids are
/// unique across organizations (one identity), so a message whose headers
/// name the wrong organization still names exactly one process.
pub async fn owner(c: &impl GenericClient, id: ProcessId) -> StoreResult<Option<OrgId>> {
    Ok(
        crate::query_opt(c, "select org_id from processes where id = $1", &[&id])
            .await?
            .map(|r| r.get(0)),
    )
}

/// What an operator's request to fail a process found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorFail {
    /// Failed now, at this time.
    Failed(DateTime<Utc>),
    /// It had already ended (completed, or failed before), and is left so.
    AlreadyEnded(ProcessStatus),
    /// The organization has no such process.
    NotFound,
}

/// Fails process `id` of `org`, if it is still open, recording `who` did it
/// (`failed_by`), when (`completed_at`) and why (`error`). A worker applying
/// the batch at this moment holds the process row until its transaction
/// ends; this then finds the process completed and leaves it.
pub async fn fail_by_operator(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    who: &str,
    error: &str,
) -> StoreResult<OperatorFail> {
    let failed = crate::query_opt(
        c,
        "update processes
            set status = 'failed', error = $3, failed_by = $4, completed_at = clock.now,
                footprint_keys = null, waiting_for = null
           from (select pg_current_xact_id() as xid, clock_timestamp() as now) as clock
          where org_id = $1 and id = $2 and status in ('queued', 'in_process')
          returning completed_at",
        &[&org, &id, &error, &who],
    )
    .await?;
    if let Some(r) = failed {
        return Ok(OperatorFail::Failed(r.get(0)));
    }
    Ok(match crate::processes::status(c, org, id).await? {
        Some(status) => OperatorFail::AlreadyEnded(status),
        None => OperatorFail::NotFound,
    })
}
