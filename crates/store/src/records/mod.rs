//! The `records` table: the set-based writes of the worker, and (in
//! `pages`) the pages the API reads.
//!
//! Every statement reaches `records` through its primary key
//! `(org_id, type_id, id)` or the unique `(org_id, type_id, ext_id)` index,
//! by `= any` of a parameter array or by `on conflict` arbitration, never
//! through a join the planner could turn into a scan of the whole table
//! while its statistics lag behind a bulk load.

use chrono::{DateTime, Utc};
use objectsync_model::RecordId;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::types::Json;

use crate::{Engine, GenericClient, Scope, StoreResult};

mod pages;
pub use pages::{count, page, page_after, page_after_sql, page_sql};

/// A stored row's identity: its id and its `ext_id`, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub id: RecordId,
    pub ext_id: Option<String>,
}

/// A record as the API shows it.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: RecordId,
    pub ext_id: Option<String>,
    pub attributes: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How a batch names rows: by our ids or by the producer's `ext_id`s.
#[derive(Debug, Clone, Copy)]
pub enum Keys<'a> {
    Ids(&'a [RecordId]),
    ExtIds(&'a [&'a str]),
}

/// Locks the rows of type `type_id` that `keys` name, in id order (so that
/// concurrent batches lock alike), and returns the ones that exist.
pub async fn lock(
    tx: &impl GenericClient,
    scope: Scope,
    keys: Keys<'_>,
) -> StoreResult<Vec<Named>> {
    const BY_ID: &str = "select id, ext_id from records
        where org_id = $1 and type_id = $2 and id = any($3) order by id for update";
    const BY_EXT_ID: &str = "select id, ext_id from records
        where org_id = $1 and type_id = $2 and ext_id = any($3) order by id for update";
    select(tx, scope, keys, BY_ID, BY_EXT_ID).await
}

/// The rows of type `type_id` that `keys` name and that exist, unlocked.
pub async fn find(c: &impl GenericClient, scope: Scope, keys: Keys<'_>) -> StoreResult<Vec<Named>> {
    const BY_ID: &str = "select id, ext_id from records
        where org_id = $1 and type_id = $2 and id = any($3)";
    const BY_EXT_ID: &str = "select id, ext_id from records
        where org_id = $1 and type_id = $2 and ext_id = any($3)";
    select(c, scope, keys, BY_ID, BY_EXT_ID).await
}

async fn select(
    c: &impl GenericClient,
    scope: Scope,
    keys: Keys<'_>,
    by_id: &str,
    by_ext_id: &str,
) -> StoreResult<Vec<Named>> {
    let rows = match keys {
        Keys::Ids(ids) => crate::query(c, by_id, &[&scope.org, &scope.type_id, &ids]).await?,
        Keys::ExtIds(exts) => {
            crate::query(c, by_ext_id, &[&scope.org, &scope.type_id, &exts]).await?
        }
    };
    Ok(rows
        .iter()
        .map(|r| Named {
            id: r.get(0),
            ext_id: r.get(1),
        })
        .collect())
}

/// One merge into a stored row.
pub struct Merge<'p, A> {
    pub id: RecordId,
    /// An `ext_id` to give a row that had none.
    pub set_ext_id: Option<&'p str>,
    /// Keys to set (`null` clears).
    pub attributes: &'p A,
}

/// The attributes a row gets when `excluded`'s are merged into its stored
/// ones. Stored attributes never hold a `null` (a `null` sent clears its
/// key), so when no value sent is `null` (`nulls` false) there is nothing
/// to strip, and the merge skips a pass over every row it updates.
fn merged(nulls: bool) -> &'static str {
    if nulls {
        "jsonb_strip_nulls(records.attributes || excluded.attributes)"
    } else {
        "records.attributes || excluded.attributes"
    }
}

/// Merges attributes into locked rows by id; `null` values clear (`nulls`:
/// whether any value is `null`).
pub async fn merge_by_id<A: Serialize + std::fmt::Debug + Sync>(
    tx: &impl GenericClient,
    scope: Scope,
    merges: &[Merge<'_, A>],
    nulls: bool,
) -> StoreResult<()> {
    let ids: Vec<RecordId> = merges.iter().map(|m| m.id).collect();
    let exts: Vec<Option<&str>> = merges.iter().map(|m| m.set_ext_id).collect();
    let attrs: Vec<Json<&A>> = merges.iter().map(|m| Json(m.attributes)).collect();
    let sql = format!(
        "insert into records (org_id, type_id, id, ext_id, attributes)
         select $1, $2, u.id, u.ext_id, u.attrs
           from unnest($3::int8[], $4::text[], $5::jsonb[]) as u(id, ext_id, attrs)
          order by u.id
             on conflict (org_id, type_id, id) do update
            set attributes = {},
                ext_id = coalesce(records.ext_id, excluded.ext_id),
                updated_at = excluded.updated_at",
        merged(nulls)
    );
    crate::execute(tx, &sql, &[&scope.org, &scope.type_id, &ids, &exts, &attrs])
        .await
        .map(drop)
}

/// A row to create: for a new `ext_id`, or for a record without
/// identifiers.
pub struct NewRow<'p, A> {
    pub ext_id: Option<&'p str>,
    pub attributes: &'p A,
}

/// Creates `rows` with ids drawn from the sequence in the order given, so
/// that ids follow the request. A row whose `ext_id` exists by now is merged
/// into the stored one instead (its drawn id is left unused, as any insert
/// that meets a conflict leaves one). `null` values are kept on insert for
/// that merge and cleared by [`strip_nulls`] (`nulls`: whether any value is
/// `null`). Returns each row's id and
/// whether it was created (an updated row version carries the updating
/// transaction in `xmax`).
pub async fn create<A: Serialize + std::fmt::Debug + Sync>(
    tx: &impl GenericClient,
    engine: Engine,
    scope: Scope,
    rows: &[NewRow<'_, A>],
    nulls: bool,
) -> StoreResult<Vec<(RecordId, bool)>> {
    let exts: Vec<Option<&str>> = rows.iter().map(|r| r.ext_id).collect();
    let attrs: Vec<Json<&A>> = rows.iter().map(|r| Json(r.attributes)).collect();
    // Rows that all have an `ext_id` take ids from the identity default, in
    // the order they are inserted, which is the order given; rows without
    // one are found again by ids drawn beforehand.
    let ids: Option<Vec<RecordId>> = if exts.iter().all(Option::is_some) {
        None
    } else {
        let n = i32::try_from(rows.len()).unwrap_or(i32::MAX);
        Some(
            // The sequence by name, a constant the planner resolves once (an
            // expression that looks it up is evaluated per id).
            crate::query(
                tx,
                "select nextval('records_id_seq') from generate_series(1, $1)",
                &[&n],
            )
            .await?
            .iter()
            .map(|r| RecordId(r.get(0)))
            .collect(),
        )
    };
    let upsert = format!(
        "on conflict (org_id, type_id, ext_id) where ext_id is not null do update
            set attributes = {},
                updated_at = excluded.updated_at
         returning ext_id, id, xmax = 0 as inserted",
        merged(nulls)
    );
    let stored = match &ids {
        None => {
            let sql = format!(
                "insert into records (org_id, type_id, ext_id, attributes)
                 select $1, $2, u.ext_id, u.attrs
                   from unnest($3::text[], $4::jsonb[]) as u(ext_id, attrs) {upsert}"
            );
            crate::query(tx, &sql, &[&scope.org, &scope.type_id, &exts, &attrs]).await?
        }
        Some(ids) => {
            let sql = format!(
                "insert into records (org_id, type_id, id, ext_id, attributes)
                 select $1, $2, u.id, u.ext_id, u.attrs
                   from unnest($3::int8[], $4::text[], $5::jsonb[]) as u(id, ext_id, attrs) {upsert}"
            );
            crate::query(tx, &sql, &[&scope.org, &scope.type_id, ids, &exts, &attrs]).await?
        }
    };
    let by_ext: std::collections::HashMap<String, (RecordId, bool)> = stored
        .iter()
        .filter_map(|r| Some((r.get::<_, Option<String>>(0)?, (r.get(1), r.get(2)))))
        .collect();
    let outcomes: Vec<(RecordId, bool)> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| match row.ext_id {
            Some(ext) => by_ext.get(ext).copied().unwrap_or((RecordId(0), false)),
            None => (ids.as_ref().map_or(RecordId(0), |ids| ids[i]), true),
        })
        .collect();
    let created = stored.iter().filter(|r| r.get::<_, bool>(2)).count();
    engine
        .count_records(tx, scope, i64::try_from(created).unwrap_or(i64::MAX))
        .await?;
    Ok(outcomes)
}

/// Drops `null` values from rows just inserted with them.
pub async fn strip_nulls(
    tx: &impl GenericClient,
    scope: Scope,
    ids: &[RecordId],
) -> StoreResult<()> {
    crate::execute(
        tx,
        "update records set attributes = jsonb_strip_nulls(attributes)
          where org_id = $1 and type_id = $2 and id = any($3)",
        &[&scope.org, &scope.type_id, &ids],
    )
    .await
    .map(drop)
}

/// Deletes these rows (their links first: see [`crate::links::delete_all_of`]).
pub async fn delete(
    tx: &impl GenericClient,
    engine: Engine,
    scope: Scope,
    ids: &[RecordId],
) -> StoreResult<()> {
    let deleted = crate::execute(
        tx,
        "delete from records where org_id = $1 and type_id = $2 and id = any($3)",
        &[&scope.org, &scope.type_id, &ids],
    )
    .await?;
    engine
        .count_records(tx, scope, -i64::try_from(deleted).unwrap_or(i64::MAX))
        .await
}
