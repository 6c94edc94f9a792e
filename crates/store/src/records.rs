//! The `records` table: the set-based writes of the worker and the pages
//! the API reads.
//!
//! Every statement reaches `records` through its primary key
//! `(org_id, type_id, id)` or the unique `(org_id, type_id, ext_id)` index,
//! by `= any` of a parameter array or by `on conflict` arbitration, never
//! through a join the planner could turn into a scan of the whole table
//! while its statistics lag behind a bulk load.

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, RecordId, TypeId};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::types::Json;

use crate::processes::Order;
use crate::{GenericClient, StoreResult, prepared};

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

fn named(rows: Vec<tokio_postgres::Row>) -> Vec<Named> {
    rows.iter()
        .map(|r| Named {
            id: r.get(0),
            ext_id: r.get(1),
        })
        .collect()
}

/// Locks the rows of type `type_id` with these ids, in id order (so that
/// concurrent batches lock alike), and returns the ones that exist.
pub async fn lock_by_ids(
    tx: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    ids: &[RecordId],
) -> StoreResult<Vec<Named>> {
    let stmt = prepared(
        tx,
        "select id, ext_id from records
          where org_id = $1 and type_id = $2 and id = any($3)
          order by id
            for update",
    )
    .await?;
    Ok(named(tx.query(&stmt, &[&org, &type_id, &ids]).await?))
}

/// Like [`lock_by_ids`], for rows named by `ext_id`.
pub async fn lock_by_ext_ids(
    tx: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    ext_ids: &[&str],
) -> StoreResult<Vec<Named>> {
    let stmt = prepared(
        tx,
        "select id, ext_id from records
          where org_id = $1 and type_id = $2 and ext_id = any($3)
          order by id
            for update",
    )
    .await?;
    Ok(named(tx.query(&stmt, &[&org, &type_id, &ext_ids]).await?))
}

/// The rows of type `type_id` with these ids that exist, unlocked.
pub async fn find_by_ids(
    c: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    ids: &[RecordId],
) -> StoreResult<Vec<Named>> {
    let stmt = prepared(
        c,
        "select id, ext_id from records where org_id = $1 and type_id = $2 and id = any($3)",
    )
    .await?;
    Ok(named(c.query(&stmt, &[&org, &type_id, &ids]).await?))
}

/// The rows of type `type_id` with these `ext_id`s that exist, unlocked.
pub async fn find_by_ext_ids(
    c: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    ext_ids: &[&str],
) -> StoreResult<Vec<Named>> {
    let stmt = prepared(
        c,
        "select id, ext_id from records where org_id = $1 and type_id = $2 and ext_id = any($3)",
    )
    .await?;
    Ok(named(c.query(&stmt, &[&org, &type_id, &ext_ids]).await?))
}

/// One merge into a stored row.
pub struct Merge<'p, A> {
    pub id: RecordId,
    /// An `ext_id` to give a row that had none.
    pub set_ext_id: Option<&'p str>,
    /// Keys to set (`null` clears).
    pub attributes: &'p A,
}

/// Merges attributes into locked rows by id; `null` values clear.
pub async fn merge_by_id<A: Serialize + std::fmt::Debug + Sync>(
    tx: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    merges: &[Merge<'_, A>],
) -> StoreResult<()> {
    let ids: Vec<RecordId> = merges.iter().map(|m| m.id).collect();
    let exts: Vec<Option<&str>> = merges.iter().map(|m| m.set_ext_id).collect();
    let attrs: Vec<Json<&A>> = merges.iter().map(|m| Json(m.attributes)).collect();
    let stmt = prepared(
        tx,
        "insert into records (org_id, type_id, id, ext_id, attributes)
         select $1, $2, u.id, u.ext_id, u.attrs
           from unnest($3::int8[], $4::text[], $5::jsonb[]) as u(id, ext_id, attrs)
          order by u.id
             on conflict (org_id, type_id, id) do update
            set attributes = jsonb_strip_nulls(records.attributes || excluded.attributes),
                ext_id = coalesce(records.ext_id, excluded.ext_id),
                updated_at = now()",
    )
    .await?;
    tx.execute(&stmt, &[&org, &type_id, &ids, &exts, &attrs])
        .await?;
    Ok(())
}

/// What [`upsert_by_ext_id`] did to one `ext_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    pub ext_id: String,
    pub id: RecordId,
    /// Created by this statement (else merged into a row that existed).
    pub inserted: bool,
}

/// Inserts new `ext_id`s and merges into existing ones, in `ext_id` order
/// (so concurrent batches lock alike). `null` values are kept on insert and
/// cleared by [`strip_nulls`]; an updated row version carries the updating
/// transaction in `xmax`, which tells inserts from updates.
pub async fn upsert_by_ext_id<A: Serialize + std::fmt::Debug + Sync>(
    tx: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    rows: &[(&str, &A)],
) -> StoreResult<Vec<Upserted>> {
    let exts: Vec<&str> = rows.iter().map(|(e, _)| *e).collect();
    let attrs: Vec<Json<&A>> = rows.iter().map(|(_, a)| Json(*a)).collect();
    let stmt = prepared(
        tx,
        "insert into records (org_id, type_id, ext_id, attributes)
         select $1, $2, u.ext_id, u.attrs
           from unnest($3::text[], $4::jsonb[]) as u(ext_id, attrs)
          order by u.ext_id
             on conflict (org_id, type_id, ext_id) where ext_id is not null do update
            set attributes = jsonb_strip_nulls(records.attributes || excluded.attributes),
                updated_at = now()
         returning ext_id, id, xmax = 0 as inserted",
    )
    .await?;
    Ok(tx
        .query(&stmt, &[&org, &type_id, &exts, &attrs])
        .await?
        .iter()
        .map(|r| Upserted {
            ext_id: r.get(0),
            id: r.get(1),
            inserted: r.get(2),
        })
        .collect())
}

/// Drops `null` values from rows just inserted with them.
pub async fn strip_nulls(
    tx: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    ids: &[RecordId],
) -> StoreResult<()> {
    let stmt = prepared(
        tx,
        "update records set attributes = jsonb_strip_nulls(attributes)
          where org_id = $1 and type_id = $2 and id = any($3)",
    )
    .await?;
    tx.execute(&stmt, &[&org, &type_id, &ids]).await?;
    Ok(())
}

/// Inserts records without identifiers, with ids drawn from the sequence in
/// the order given; returns those ids.
pub async fn insert_anonymous<A: Serialize + std::fmt::Debug + Sync>(
    tx: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    attributes: &[A],
) -> StoreResult<Vec<RecordId>> {
    let n = i32::try_from(attributes.len()).unwrap_or(i32::MAX);
    let stmt = prepared(
        tx,
        "select nextval(pg_get_serial_sequence('records', 'id')) from generate_series(1, $1)",
    )
    .await?;
    let ids: Vec<RecordId> = tx
        .query(&stmt, &[&n])
        .await?
        .iter()
        .map(|r| RecordId(r.get(0)))
        .collect();
    let attrs: Vec<Json<&A>> = attributes.iter().map(Json).collect();
    let stmt = prepared(
        tx,
        "insert into records (org_id, type_id, id, attributes)
         select $1, $2, u.id, u.attrs
           from unnest($3::int8[], $4::jsonb[]) as u(id, attrs)",
    )
    .await?;
    tx.execute(&stmt, &[&org, &type_id, &ids, &attrs]).await?;
    Ok(ids)
}

/// Deletes these rows (their links first: see [`crate::links::delete_all_of`]).
pub async fn delete(
    tx: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    ids: &[RecordId],
) -> StoreResult<()> {
    let stmt = prepared(
        tx,
        "delete from records where org_id = $1 and type_id = $2 and id = any($3)",
    )
    .await?;
    tx.execute(&stmt, &[&org, &type_id, &ids]).await?;
    Ok(())
}

/// A page of a type's records by id.
pub async fn page(
    c: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    order: Order,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<Record>> {
    let sql = format!(
        "select id, ext_id, attributes, created_at, updated_at
           from records
          where org_id = $1 and type_id = $2
          order by id {}
          limit $3 offset $4",
        order.sql()
    );
    let stmt = prepared(c, &sql).await?;
    Ok(c.query(&stmt, &[&org, &type_id, &limit, &offset])
        .await?
        .iter()
        .map(|r| Record {
            id: r.get(0),
            ext_id: r.get(1),
            attributes: r.get(2),
            created_at: r.get(3),
            updated_at: r.get(4),
        })
        .collect())
}

/// How many records of a type an organization holds.
pub async fn count(c: &impl GenericClient, org: OrgId, type_id: TypeId) -> StoreResult<i64> {
    let stmt = prepared(
        c,
        "select count(*) from records where org_id = $1 and type_id = $2",
    )
    .await?;
    Ok(c.query_one(&stmt, &[&org, &type_id]).await?.get(0))
}
