//! Applying an upsert batch: a handful of set-based statements, whatever the
//! number of records.
//!
//! 1. lock the stored rows the batch names (`for update`, in id order, so
//!    two batches touching the same rows queue instead of deadlocking; rows
//!    named by `ext_id` first, then those named by `id`);
//! 2. plan in memory (`plan`): one write per row, records folded in order;
//! 3. one upsert by primary key for existing rows, one
//!    `insert ... on conflict do nothing` for new `ext_id`s (in `ext_id`
//!    order), a merge `update` for any `ext_id` another batch created in the
//!    meantime, and one insert for records without identifiers.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use objectsync_model::prepare::check_attributes;
use objectsync_model::{ObjectType, RejectionCode, UpsertBatch};
use serde_json::{Map, Value};

use super::plan::{self, Candidate, Existing, Outcome, Rejection, Target};
use super::{Applied, ErrorRow};
use crate::error::WorkerError;

// Every statement reaches `records` through a unique index, by `= any` of a
// parameter array or by `on conflict` arbitration, never through a join the
// planner could turn into a scan of the whole table while its statistics lag
// behind a bulk load.

const LOCK_BY_EXT_ID: &str = "
    select id, ext_id from records
     where org_id = $1 and type_id = $2 and ext_id = any($3)
     order by id
       for update";

const LOCK_BY_ID: &str = "
    select id, ext_id from records
     where org_id = $1 and type_id = $2 and id = any($3)
     order by id
       for update";

/// Existing rows, already locked: `on conflict` finds each by primary key.
const UPDATE_EXISTING: &str = "
    insert into records (org_id, type_id, id, ext_id, attributes)
    select $1, $2, u.id, u.ext_id, u.attrs
      from unnest($3::int8[], $4::text[], $5::jsonb[]) as u(id, ext_id, attrs)
     order by u.id
        on conflict (org_id, type_id, id) do update
       set attributes = jsonb_strip_nulls(records.attributes || excluded.attributes),
           ext_id = coalesce(records.ext_id, excluded.ext_id),
           updated_at = now()";

const INSERT_NEW: &str = "
    insert into records (org_id, type_id, ext_id, attributes)
    select $1, $2, u.ext_id, u.attrs
      from unnest($3::text[], $4::jsonb[]) as u(ext_id, attrs)
     order by u.ext_id
        on conflict (org_id, type_id, ext_id) where ext_id is not null do nothing
    returning ext_id, id";

/// `ext_id`s another batch created after we looked: merge like an update.
const MERGE_RACED: &str = "
    insert into records (org_id, type_id, ext_id, attributes)
    select $1, $2, u.ext_id, u.attrs
      from unnest($3::text[], $4::jsonb[]) as u(ext_id, attrs)
     order by u.ext_id
        on conflict (org_id, type_id, ext_id) where ext_id is not null do update
       set attributes = jsonb_strip_nulls(records.attributes || excluded.attributes),
           updated_at = now()
    returning ext_id, id";

const NEXT_IDS: &str = "
    select nextval(pg_get_serial_sequence('records', 'id')) from generate_series(1, $1)";

const INSERT_ANONYMOUS: &str = "
    insert into records (org_id, type_id, id, attributes)
    select $1, $2, u.id, u.attrs
      from unnest($3::int8[], $4::jsonb[]) as u(id, attrs)";

fn without_nulls(mut attrs: Map<String, Value>) -> Value {
    attrs.retain(|_, v| !v.is_null());
    Value::Object(attrs)
}

/// Applies `batch` inside `tx` and reports each record's outcome.
pub(crate) async fn apply(
    tx: &Transaction<'_>,
    org_id: i64,
    object_type: &ObjectType,
    batch: &UpsertBatch,
) -> Result<Applied, WorkerError> {
    let type_id = object_type.id;
    let candidates: Vec<Candidate<'_>> = batch
        .records
        .iter()
        .map(|r| Candidate {
            identifiers: &r.identifiers,
            attributes: check_attributes(object_type, &r.attributes).map_err(|e| Rejection {
                code: RejectionCode::InvalidAttributeValue,
                message: e.to_string(),
            }),
        })
        .collect();

    let ids: Vec<i64> = batch
        .records
        .iter()
        .filter_map(|r| r.identifiers.id)
        .collect();
    let exts: Vec<&str> = batch
        .records
        .iter()
        .filter_map(|r| r.identifiers.ext_id.as_deref())
        .collect();
    let mut existing = Existing::default();
    if !exts.is_empty() {
        let stmt = tx.prepare_cached(LOCK_BY_EXT_ID).await?;
        for row in tx.query(&stmt, &[&org_id, &type_id, &exts]).await? {
            existing.insert(row.get(0), row.get(1));
        }
    }
    if !ids.is_empty() {
        let stmt = tx.prepare_cached(LOCK_BY_ID).await?;
        for row in tx.query(&stmt, &[&org_id, &type_id, &ids]).await? {
            existing.insert(row.get(0), row.get(1));
        }
    }

    let plan = plan::plan(candidates, &existing, object_type.name.as_str());

    if !plan.updates.is_empty() {
        let ids: Vec<i64> = plan.updates.iter().map(|u| u.id).collect();
        let exts: Vec<Option<&str>> = plan
            .updates
            .iter()
            .map(|u| u.set_ext_id.as_deref())
            .collect();
        let attrs: Vec<Value> = plan
            .updates
            .iter()
            .map(|u| Value::Object(u.attributes.clone()))
            .collect();
        let stmt = tx.prepare_cached(UPDATE_EXISTING).await?;
        tx.execute(&stmt, &[&org_id, &type_id, &ids, &exts, &attrs])
            .await?;
    }

    // ext_id → id of the rows this batch created or merged into.
    let mut new_ids: HashMap<&str, i64> = HashMap::new();
    let mut raced: Vec<bool> = vec![false; plan.inserts.len()];
    if !plan.inserts.is_empty() {
        let exts: Vec<&str> = plan.inserts.iter().map(|i| i.ext_id.as_str()).collect();
        let attrs: Vec<Value> = plan
            .inserts
            .iter()
            .map(|i| without_nulls(i.attributes.clone()))
            .collect();
        let stmt = tx.prepare_cached(INSERT_NEW).await?;
        let rows = tx.query(&stmt, &[&org_id, &type_id, &exts, &attrs]).await?;
        let inserted: HashMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut late_exts = Vec::new();
        let mut late_attrs = Vec::new();
        for (i, insert) in plan.inserts.iter().enumerate() {
            match inserted.get(&insert.ext_id) {
                Some(&id) => {
                    new_ids.insert(insert.ext_id.as_str(), id);
                }
                None => {
                    // Another batch created this ext_id after we looked:
                    // merge into its row like any update.
                    raced[i] = true;
                    late_exts.push(insert.ext_id.as_str());
                    late_attrs.push(Value::Object(insert.attributes.clone()));
                }
            }
        }
        if !late_exts.is_empty() {
            let stmt = tx.prepare_cached(MERGE_RACED).await?;
            for row in tx
                .query(&stmt, &[&org_id, &type_id, &late_exts, &late_attrs])
                .await?
            {
                let ext: String = row.get(0);
                if let Some(insert) = plan.inserts.iter().find(|i| i.ext_id == ext) {
                    new_ids.insert(insert.ext_id.as_str(), row.get(1));
                }
            }
        }
    }

    let mut anonymous_ids: Vec<i64> = Vec::new();
    if !plan.anonymous.is_empty() {
        let n = i32::try_from(plan.anonymous.len()).unwrap_or(i32::MAX);
        let stmt = tx.prepare_cached(NEXT_IDS).await?;
        anonymous_ids = tx
            .query(&stmt, &[&n])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let attrs: Vec<Value> = plan
            .anonymous
            .iter()
            .map(|a| without_nulls(a.clone()))
            .collect();
        let stmt = tx.prepare_cached(INSERT_ANONYMOUS).await?;
        tx.execute(&stmt, &[&org_id, &type_id, &anonymous_ids, &attrs])
            .await?;
    }

    let record_id = |t: Target| -> Option<i64> {
        match t {
            Target::Existing(i) => Some(plan.updates[i].id),
            Target::NewExt(i) => new_ids.get(plan.inserts[i].ext_id.as_str()).copied(),
            Target::Anonymous(i) => anonymous_ids.get(i).copied(),
        }
    };
    let mut applied = Applied::default();
    for (index, (outcome, record)) in plan.outcomes.iter().zip(&batch.records).enumerate() {
        applied.counts.processed += 1;
        match outcome {
            Outcome::Created(t @ Target::NewExt(i)) if raced[*i] => {
                applied.counts.updated += 1;
                applied.record_ids.push(record_id(*t));
            }
            Outcome::Created(t) => {
                applied.counts.created += 1;
                applied.record_ids.push(record_id(*t));
            }
            Outcome::Updated(t) => {
                applied.counts.updated += 1;
                applied.record_ids.push(record_id(*t));
            }
            Outcome::Rejected(r) => {
                applied.counts.failed += 1;
                applied.record_ids.push(None);
                applied.errors.push(ErrorRow::new(
                    index,
                    &record.identifiers,
                    r.code,
                    &r.message,
                ));
            }
        }
    }
    Ok(applied)
}
