//! Applying a delete batch: lock the named records in id order, delete their
//! links in both directions, then the records; an identifier that names no
//! record (or one already deleted earlier in the batch) is a per-record
//! `record_not_found`.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use objectsync_model::{DeleteBatch, Identifiers, ObjectType, RejectionCode};

use super::{Applied, ErrorRow};
use crate::error::WorkerError;

const LOCK_BY_ID: &str = "
    select id, ext_id from records
     where org_id = $1 and type_id = $2 and id = any($3)
     order by id
       for update";

const LOCK_BY_EXT_ID: &str = "
    select id, ext_id from records
     where org_id = $1 and type_id = $2 and ext_id = any($3)
     order by id
       for update";

const DELETE_LINKS: &str = "
    with gone as (
        delete from record_links
         where org_id = $1 and src_type = $2 and src_id = any($3)
     returning src_type, src_id, dst_type, dst_id
    )
    delete from record_links l
     using gone g
     where l.org_id = $1 and l.src_type = g.dst_type and l.src_id = g.dst_id
       and l.dst_type = g.src_type and l.dst_id = g.src_id";

const DELETE_RECORDS: &str = "
    delete from records where org_id = $1 and type_id = $2 and id = any($3)";

pub(crate) async fn apply(
    tx: &Transaction<'_>,
    org_id: i64,
    object_type: &ObjectType,
    batch: &DeleteBatch,
) -> Result<Applied, WorkerError> {
    let type_id = object_type.id;
    // What each identifier of the request is, as sent and as a lookup key.
    let requested: Vec<(Identifiers, String)> = match batch {
        DeleteBatch::Ids(ids) => ids
            .iter()
            .map(|id| {
                (
                    Identifiers {
                        id: Some(*id),
                        ext_id: None,
                    },
                    id.to_string(),
                )
            })
            .collect(),
        DeleteBatch::ExtIds(exts) => exts
            .iter()
            .map(|e| {
                (
                    Identifiers {
                        id: None,
                        ext_id: Some(e.clone()),
                    },
                    e.clone(),
                )
            })
            .collect(),
    };
    let rows = match batch {
        DeleteBatch::Ids(ids) => {
            let stmt = tx.prepare_cached(LOCK_BY_ID).await?;
            tx.query(&stmt, &[&org_id, &type_id, ids]).await?
        }
        DeleteBatch::ExtIds(exts) => {
            let stmt = tx.prepare_cached(LOCK_BY_EXT_ID).await?;
            tx.query(&stmt, &[&org_id, &type_id, exts]).await?
        }
    };
    let found: HashMap<String, i64> = rows
        .iter()
        .map(|r| {
            let id: i64 = r.get(0);
            let key = match batch {
                DeleteBatch::Ids(_) => id.to_string(),
                DeleteBatch::ExtIds(_) => r.get::<_, Option<String>>(1).unwrap_or_default(),
            };
            (key, id)
        })
        .collect();

    let mut applied = Applied::default();
    let mut deleted: Vec<i64> = Vec::new();
    let mut seen: HashSet<i64> = HashSet::new();
    for (index, (ids, key)) in requested.iter().enumerate() {
        applied.counts.processed += 1;
        match found.get(key) {
            Some(&id) if seen.insert(id) => {
                deleted.push(id);
                applied.counts.deleted += 1;
                applied.record_ids.push(Some(id));
            }
            again => {
                applied.counts.failed += 1;
                applied.record_ids.push(None);
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
                applied.errors.push(ErrorRow::new(
                    index,
                    ids,
                    RejectionCode::RecordNotFound,
                    &message,
                ));
            }
        }
    }
    if !deleted.is_empty() {
        let stmt = tx.prepare_cached(DELETE_LINKS).await?;
        tx.execute(&stmt, &[&org_id, &type_id, &deleted]).await?;
        let stmt = tx.prepare_cached(DELETE_RECORDS).await?;
        tx.execute(&stmt, &[&org_id, &type_id, &deleted]).await?;
    }
    Ok(applied)
}
