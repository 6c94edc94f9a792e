//! Applying an upsert batch: a handful of set-based statements, whatever the
//! number of records.
//!
//! 1. when a record names a row by `id`, lock the stored rows the batch
//!    names (in id order; rows named by `ext_id` first, then those named by
//!    `id`), so that records naming one row both ways fold together; batches
//!    that name rows by `ext_id` only skip this;
//! 2. plan in memory (`plan`): one write per row, records folded in order;
//! 3. one merge by primary key for the locked rows, and one insert of the
//!    new rows — new `ext_id`s and records without identifiers — with ids
//!    drawn in request order (it merges into an `ext_id` that another batch
//!    made meanwhile instead).

use objectsync_model::prepare::{Checked, check_attributes};
use objectsync_model::{ObjectType, OrgId, RecordId, RejectionCode, Upsert};
use objectsync_store::records::{self, Keys, Merge, NewRow};
use objectsync_store::{Engine, GenericClient, Scope};

use super::plan::{self, Candidate, Existing, Insert, Outcome, Rejection, Target, Update};
use super::{Applied, rejection};
use crate::error::WorkerError;

/// An applied upsert: its outcome, and where each record went.
pub(crate) struct Upserted {
    pub(crate) applied: Applied,
    /// The stored id of each record of the request, `None` if rejected.
    pub(crate) record_ids: Vec<Option<RecordId>>,
}

/// Locks the rows the batch names, when it names any by `id`.
async fn lock_named(
    tx: &impl GenericClient,
    scope: Scope,
    batch: &Upsert<'_>,
) -> Result<Existing, WorkerError> {
    let mut existing = Existing::default();
    let ids: Vec<RecordId> = batch
        .records
        .iter()
        .filter_map(|r| r.identifiers.id.map(RecordId))
        .collect();
    if ids.is_empty() {
        return Ok(existing);
    }
    let exts: Vec<&str> = batch
        .records
        .iter()
        .filter_map(|r| r.identifiers.ext_id.as_deref())
        .collect();
    if !exts.is_empty() {
        for row in records::lock(tx, scope, Keys::ExtIds(&exts)).await? {
            existing.insert(row.id, row.ext_id);
        }
    }
    for row in records::lock(tx, scope, Keys::Ids(&ids)).await? {
        existing.insert(row.id, row.ext_id);
    }
    Ok(existing)
}

/// Each record of `batch` with its attributes judged against the type: what
/// the planner takes.
pub(crate) fn candidates<'r>(
    object_type: &ObjectType,
    batch: &'r Upsert<'_>,
) -> Vec<Candidate<'r>> {
    batch
        .records
        .iter()
        .map(|r| Candidate {
            identifiers: &r.identifiers,
            attributes: check_attributes(object_type, &r.attributes).map_err(|e| Rejection {
                code: RejectionCode::InvalidAttributeValue,
                message: e.to_string(),
            }),
        })
        .collect()
}

/// Applies `batch` inside `tx` and reports each record's outcome.
pub(crate) async fn apply(
    tx: &impl GenericClient,
    engine: Engine,
    org: OrgId,
    object_type: &ObjectType,
    batch: &Upsert<'_>,
) -> Result<Upserted, WorkerError> {
    let scope = Scope::of(org, object_type.id);
    let candidates = candidates(object_type, batch);
    let existing = lock_named(tx, scope, batch).await?;
    let plan = plan::plan(candidates, &existing, object_type.name.as_str());

    write_updates(tx, scope, &plan.updates).await?;
    // Each new row: its id, and whether this batch created it.
    let created = write_inserts(tx, engine, scope, &plan.inserts).await?;

    let row_of = |t: Target| -> Option<(RecordId, bool)> {
        match t {
            Target::Existing(i) => Some((plan.updates[i].id, false)),
            Target::New(i) => created.get(i).copied(),
        }
    };
    let mut applied = Applied::default();
    let mut record_ids = Vec::with_capacity(batch.records.len());
    for (index, (outcome, record)) in plan.outcomes.iter().zip(&batch.records).enumerate() {
        applied.counts.processed += 1;
        match outcome {
            Outcome::Created(t) | Outcome::Updated(t) => {
                let row = row_of(*t);
                // Only the first record to write a row this batch created
                // counts as a create; a row that existed, or that another
                // batch created meanwhile, was updated.
                if matches!(outcome, Outcome::Created(_)) && row.is_some_and(|(_, new)| new) {
                    applied.counts.created += 1;
                } else {
                    applied.counts.updated += 1;
                }
                record_ids.push(row.map(|(id, _)| id));
            }
            Outcome::Rejected(r) => {
                applied.counts.failed += 1;
                record_ids.push(None);
                applied
                    .rejections
                    .push(rejection(index, &record.identifiers, r.code, &r.message));
            }
        }
    }
    Ok(Upserted {
        applied,
        record_ids,
    })
}

/// Merges the planned updates into their rows.
async fn write_updates(
    tx: &impl GenericClient,
    scope: Scope,
    updates: &[Update<'_>],
) -> Result<(), WorkerError> {
    if !updates.is_empty() {
        let merges: Vec<Merge<'_, _>> = updates
            .iter()
            .map(|u| Merge {
                id: u.id,
                set_ext_id: u.set_ext_id.as_deref(),
                attributes: &u.attributes,
            })
            .collect();
        let nulls = updates
            .iter()
            .any(|u| u.attributes.values().any(Checked::is_null));
        records::merge_by_id(tx, scope, &merges, nulls).await?;
    }
    Ok(())
}

/// Creates the planned rows: each one's id, and whether this batch created
/// it (a row another batch created meanwhile is merged into instead).
async fn write_inserts(
    tx: &impl GenericClient,
    engine: Engine,
    scope: Scope,
    inserts: &[Insert<'_>],
) -> Result<Vec<(RecordId, bool)>, WorkerError> {
    let mut created: Vec<(RecordId, bool)> = Vec::new();
    if !inserts.is_empty() {
        let rows: Vec<NewRow<'_, _>> = inserts
            .iter()
            .map(|i| NewRow {
                ext_id: i.ext_id,
                attributes: &i.attributes,
            })
            .collect();
        let nulls = inserts
            .iter()
            .any(|i| i.attributes.values().any(Checked::is_null));
        created = records::create(tx, engine, scope, &rows, nulls).await?;
        // New rows whose records sent `null`s (kept for the merge case).
        let with_nulls: Vec<RecordId> = inserts
            .iter()
            .zip(&created)
            .filter(|(i, (_, new))| *new && i.attributes.values().any(Checked::is_null))
            .map(|(_, (id, _))| *id)
            .collect();
        if !with_nulls.is_empty() {
            records::strip_nulls(tx, scope, &with_nulls).await?;
        }
    }
    Ok(created)
}
