//! Applying one batch, exactly once in effect.
//!
//! Everything a batch changes — records, rejections, counters, the
//! `completed` status — is written in one transaction that starts by locking
//! the process row. A redelivered batch whose process is already completed
//! (the worker died after commit, before ack) finds it so and changes
//! nothing; one whose worker died before commit finds nothing of its first
//! attempt, because that transaction never committed.

mod associate;
mod delete;
mod links;
mod plan;
mod process;
#[cfg(test)]
mod proptests;
mod upsert;

use deadpool_postgres::Pool;
use objectsync_infra::object_types;
use objectsync_model::{BatchMeta, Identifiers, Job, RejectionCode};
use serde_json::Value;

pub(crate) use process::{mark_failed, record_attempt_error};

use crate::error::WorkerError;

/// Record counters of a process.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub processed: i32,
    pub created: i32,
    pub updated: i32,
    pub deleted: i32,
    pub failed: i32,
    pub links: LinkCounts,
}

/// Outcome counts of a batch's association entries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkCounts {
    /// Links made.
    pub created: i32,
    /// Links removed.
    pub removed: i32,
    /// Link requests refused (each has an error row).
    pub failed: i32,
}

/// Limits the worker applies that come from its settings.
#[derive(Debug, Clone, Copy)]
pub struct ApplyConfig {
    /// Most linked records per associated type on one record.
    pub max_links_per_type: u32,
}

/// One stored rejection.
#[derive(Debug, Clone)]
pub(crate) struct ErrorRow {
    pub(crate) index: i32,
    pub(crate) identifiers: Value,
    pub(crate) code: RejectionCode,
    pub(crate) message: String,
}

impl ErrorRow {
    pub(crate) fn new(index: usize, ids: &Identifiers, code: RejectionCode, message: &str) -> Self {
        Self {
            index: i32::try_from(index).unwrap_or(i32::MAX),
            identifiers: serde_json::to_value(ids).unwrap_or(Value::Null),
            code,
            message: message.to_owned(),
        }
    }
}

/// What applying a job produced.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) counts: Counts,
    pub(crate) errors: Vec<ErrorRow>,
    /// The stored id of each record of the request, `None` if rejected.
    pub(crate) record_ids: Vec<Option<i64>>,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Applied now, with these counts.
    Applied(Counts),
    /// Completed or failed before: nothing done.
    AlreadyDone,
    /// The request that queued the batch was rolled back after publishing
    /// (its client got an error), so there is no process and nothing to do.
    Orphan,
}

/// Applies `job`, the batch of process `meta.process_id`, to the database;
/// `delivery` counts from 1 and is recorded on the process.
pub async fn handle(
    pool: &Pool,
    meta: &BatchMeta,
    job: &Job<'_>,
    delivery: u32,
    config: ApplyConfig,
) -> Result<Handled, WorkerError> {
    let mut client = pool.get().await?;
    process::mark_started(&client, meta, delivery).await?;
    let tx = client.transaction().await?;
    match process::lock(&tx, meta).await? {
        Some(status) if status.is_final() => return Ok(Handled::AlreadyDone),
        Some(_) => {}
        None => return process::missing(&tx, meta).await,
    }
    let name = meta.object_type.as_str();
    let Some(object_type) = object_types::find(&*tx, meta.org_id, name).await? else {
        return Err(WorkerError::Permanent(format!(
            "object type '{name}' no longer exists"
        )));
    };
    let org = meta.org_id;
    let mut applied = match job {
        Job::Upsert(batch) => {
            let mut applied = upsert::apply(&tx, org, &object_type, batch).await?;
            if batch.records.iter().any(|r| !r.associations.is_empty()) {
                let types = object_types::list(&*tx, org).await?;
                let (errors, links) = associate::apply(
                    &tx,
                    org,
                    &object_type,
                    &types,
                    batch,
                    &applied.record_ids,
                    config.max_links_per_type,
                )
                .await?;
                applied.errors.extend(errors);
                applied.counts.links = links;
            }
            applied
        }
        Job::Delete(batch) => delete::apply(&tx, org, &object_type, batch).await?,
    };
    // Record rejections and link refusals, in request order.
    applied.errors.sort_by_key(|e| e.index);
    process::write_errors(&tx, meta, &applied.errors).await?;
    process::complete(&tx, meta, &applied.counts, delivery).await?;
    tx.commit().await?;
    Ok(Handled::Applied(applied.counts))
}
