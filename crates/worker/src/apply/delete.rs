//! Applying a delete batch: lock the named records in id order, delete their
//! links in both directions, then the records; an identifier that names no
//! record (or one already deleted earlier in the batch) is a per-record
//! `record_not_found`.

use std::collections::{HashMap, HashSet};

use objectsync_model::{DeleteBatch, Identifiers, ObjectType, OrgId, RecordId, RejectionCode};
use objectsync_store::records::{self, Keys};
use objectsync_store::{Engine, GenericClient, Scope, links};

use super::{Applied, rejection};
use crate::error::WorkerError;

pub(crate) async fn apply(
    tx: &impl GenericClient,
    engine: Engine,
    org: OrgId,
    object_type: &ObjectType,
    batch: &DeleteBatch,
) -> Result<Applied, WorkerError> {
    let type_id = object_type.id;
    let requested = requested(batch);
    let found = lock_named(tx, Scope::of(org, type_id), batch).await?;

    let mut applied = Applied::default();
    let mut deleted: Vec<RecordId> = Vec::new();
    let mut seen: HashSet<RecordId> = HashSet::new();
    for (index, (ids, key)) in requested.iter().enumerate() {
        applied.counts.processed += 1;
        match found.get(key) {
            Some(&id) if seen.insert(id) => {
                deleted.push(id);
                applied.counts.deleted += 1;
            }
            again => {
                applied.counts.failed += 1;
                let what = match (&ids.id, &ids.ext_id) {
                    (Some(id), _) => format!("id {id}"),
                    (_, Some(ext)) => format!("ext_id '{ext}'"),
                    _ => "no identifier".into(),
                };
                let message = match again {
                    Some(_) => format!(
                        "the {} record with {what} is deleted earlier in this batch",
                        object_type.name
                    ),
                    None => format!("no {} record has {what}", object_type.name),
                };
                applied.rejections.push(rejection(
                    index,
                    ids,
                    RejectionCode::RecordNotFound,
                    &message,
                ));
            }
        }
    }
    if !deleted.is_empty() {
        links::remove_all_of(tx, Scope::of(org, type_id), &deleted).await?;
        records::delete(tx, engine, Scope::of(org, type_id), &deleted).await?;
    }
    Ok(applied)
}

/// Each identifier as sent, and the key it is looked up by.
fn requested(batch: &DeleteBatch) -> Vec<(Identifiers, String)> {
    match batch {
        DeleteBatch::Ids(ids) => ids
            .iter()
            .map(|id| {
                let ids = Identifiers {
                    id: Some(*id),
                    ext_id: None,
                };
                (ids, id.to_string())
            })
            .collect(),
        DeleteBatch::ExtIds(exts) => exts
            .iter()
            .map(|e| {
                let ids = Identifiers {
                    id: None,
                    ext_id: Some(e.clone()),
                };
                (ids, e.clone())
            })
            .collect(),
    }
}

/// Locks the records `batch` names, in id order: their ids by lookup key.
async fn lock_named(
    tx: &impl GenericClient,
    scope: Scope,
    batch: &DeleteBatch,
) -> Result<HashMap<String, RecordId>, WorkerError> {
    let rows = match batch {
        DeleteBatch::Ids(ids) => {
            let ids: Vec<RecordId> = ids.iter().copied().map(RecordId).collect();
            records::lock(tx, scope, Keys::Ids(&ids)).await?
        }
        DeleteBatch::ExtIds(exts) => {
            let exts: Vec<&str> = exts.iter().map(String::as_str).collect();
            records::lock(tx, scope, Keys::ExtIds(&exts)).await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let key = match batch {
                DeleteBatch::Ids(_) => r.id.to_string(),
                DeleteBatch::ExtIds(_) => r.ext_id.unwrap_or_default(),
            };
            (key, r.id)
        })
        .collect())
}
