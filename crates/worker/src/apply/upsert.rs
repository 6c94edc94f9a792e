//! Applying an upsert batch: a handful of set-based statements, whatever the
//! number of records.
//!
//! 1. when a record names a row by `id`, lock the stored rows the batch
//!    names (`for update`, in id order; rows named by `ext_id` first, then
//!    those named by `id`), so that records naming one row both ways fold
//!    together; batches that name rows by `ext_id` only skip this;
//! 2. plan in memory (`plan`): one write per row, records folded in order;
//! 3. one upsert by primary key for the locked rows, one upsert by `ext_id`
//!    (in `ext_id` order, so concurrent batches lock alike; it inserts new
//!    rows and merges into rows that exist or that another batch just made),
//!    and one insert for records without identifiers.
//!
//! Every statement reaches `records` through a unique index, by `= any` of a
//! parameter array or by `on conflict` arbitration, never through a join the
//! planner could turn into a scan of the whole table while its statistics lag
//! behind a bulk load.

use std::collections::{BTreeMap, HashMap};

use deadpool_postgres::Transaction;
use objectsync_model::prepare::{Attributes, check_attributes};
use objectsync_model::{ObjectType, RejectionCode, Upsert};
use tokio_postgres::types::Json;

use super::plan::{self, Candidate, Existing, Outcome, Rejection, Target};
use super::{Applied, ErrorRow};
use crate::error::WorkerError;

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

/// Rows locked above: `on conflict` finds each by primary key.
const UPDATE_BY_ID: &str = "
    insert into records (org_id, type_id, id, ext_id, attributes)
    select $1, $2, u.id, u.ext_id, u.attrs
      from unnest($3::int8[], $4::text[], $5::jsonb[]) as u(id, ext_id, attrs)
     order by u.id
        on conflict (org_id, type_id, id) do update
       set attributes = jsonb_strip_nulls(records.attributes || excluded.attributes),
           ext_id = coalesce(records.ext_id, excluded.ext_id),
           updated_at = now()";

/// Inserts new `ext_id`s and merges into existing ones; `inserted` tells
/// which (an updated row version carries the updating transaction in xmax).
const UPSERT_BY_EXT_ID: &str = "
    insert into records (org_id, type_id, ext_id, attributes)
    select $1, $2, u.ext_id, u.attrs
      from unnest($3::text[], $4::jsonb[]) as u(ext_id, attrs)
     order by u.ext_id
        on conflict (org_id, type_id, ext_id) where ext_id is not null do update
       set attributes = jsonb_strip_nulls(records.attributes || excluded.attributes),
           updated_at = now()
    returning ext_id, id, xmax = 0 as inserted";

/// New rows whose records sent `null`s (kept above for the merge case).
const STRIP_NULLS: &str = "
    update records set attributes = jsonb_strip_nulls(attributes)
     where org_id = $1 and type_id = $2 and id = any($3)";

const NEXT_IDS: &str = "
    select nextval(pg_get_serial_sequence('records', 'id')) from generate_series(1, $1)";

const INSERT_ANONYMOUS: &str = "
    insert into records (org_id, type_id, id, attributes)
    select $1, $2, u.id, u.attrs
      from unnest($3::int8[], $4::jsonb[]) as u(id, attrs)";

/// A jsonb parameter serialized straight from the message's values.
type JsonParam<'p, 'a> = Json<&'p Attributes<'a>>;

fn json_params<'p, 'a>(maps: impl Iterator<Item = &'p Attributes<'a>>) -> Vec<JsonParam<'p, 'a>>
where
    'a: 'p,
{
    maps.map(Json).collect()
}

fn has_null(attrs: &Attributes<'_>) -> bool {
    attrs.values().any(|v| v.is_null())
}

/// Locks the rows the batch names, when it names any by `id`.
async fn lock_named(
    tx: &Transaction<'_>,
    org_id: i64,
    type_id: i32,
    batch: &Upsert<'_>,
) -> Result<Existing, WorkerError> {
    let mut existing = Existing::default();
    let ids: Vec<i64> = batch
        .records
        .iter()
        .filter_map(|r| r.identifiers.id)
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
        let stmt = tx.prepare_cached(LOCK_BY_EXT_ID).await?;
        for row in tx.query(&stmt, &[&org_id, &type_id, &exts]).await? {
            existing.insert(row.get(0), row.get(1));
        }
    }
    let stmt = tx.prepare_cached(LOCK_BY_ID).await?;
    for row in tx.query(&stmt, &[&org_id, &type_id, &ids]).await? {
        existing.insert(row.get(0), row.get(1));
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
    tx: &Transaction<'_>,
    org_id: i64,
    object_type: &ObjectType,
    batch: &Upsert<'_>,
) -> Result<Applied, WorkerError> {
    let type_id = object_type.id;
    let candidates = candidates(object_type, batch);
    let existing = lock_named(tx, org_id, type_id, batch).await?;
    let plan = plan::plan(candidates, &existing, object_type.name.as_str());

    if !plan.updates.is_empty() {
        let ids: Vec<i64> = plan.updates.iter().map(|u| u.id).collect();
        let exts: Vec<Option<&str>> = plan
            .updates
            .iter()
            .map(|u| u.set_ext_id.as_deref())
            .collect();
        let attrs = json_params(plan.updates.iter().map(|u| &u.attributes));
        let stmt = tx.prepare_cached(UPDATE_BY_ID).await?;
        tx.execute(&stmt, &[&org_id, &type_id, &ids, &exts, &attrs])
            .await?;
    }

    // ext_id → (id, whether this batch created the row).
    let mut by_ext: HashMap<String, (i64, bool)> = HashMap::new();
    if !plan.inserts.is_empty() {
        let exts: Vec<&str> = plan.inserts.iter().map(|i| i.ext_id.as_str()).collect();
        let attrs = json_params(plan.inserts.iter().map(|i| &i.attributes));
        let stmt = tx.prepare_cached(UPSERT_BY_EXT_ID).await?;
        for row in tx.query(&stmt, &[&org_id, &type_id, &exts, &attrs]).await? {
            by_ext.insert(row.get(0), (row.get(1), row.get(2)));
        }
        let with_nulls: Vec<i64> = plan
            .inserts
            .iter()
            .filter(|i| has_null(&i.attributes))
            .filter_map(|i| {
                by_ext
                    .get(&i.ext_id)
                    .filter(|(_, new)| *new)
                    .map(|(id, _)| *id)
            })
            .collect();
        if !with_nulls.is_empty() {
            let stmt = tx.prepare_cached(STRIP_NULLS).await?;
            tx.execute(&stmt, &[&org_id, &type_id, &with_nulls]).await?;
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
        let stripped: Vec<BTreeMap<&str, &serde_json::Value>> = plan
            .anonymous
            .iter()
            .map(|a| {
                a.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (*k, v))
                    .collect()
            })
            .collect();
        let attrs: Vec<Json<_>> = stripped.iter().map(Json).collect();
        let stmt = tx.prepare_cached(INSERT_ANONYMOUS).await?;
        tx.execute(&stmt, &[&org_id, &type_id, &anonymous_ids, &attrs])
            .await?;
    }

    let row_of = |t: Target| -> Option<(i64, bool)> {
        match t {
            Target::Existing(i) => Some((plan.updates[i].id, false)),
            Target::NewExt(i) => by_ext.get(plan.inserts[i].ext_id.as_str()).copied(),
            Target::Anonymous(i) => anonymous_ids.get(i).map(|id| (*id, true)),
        }
    };
    let mut applied = Applied::default();
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
                applied.record_ids.push(row.map(|(id, _)| id));
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
