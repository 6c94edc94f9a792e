//! The `record_links` table. A link is symmetric and stored in both
//! directions, so that "the records linked to X" and "how many records of
//! type T does X hold" are both prefix scans of the primary key
//! `(org_id, src_type, src_id, dst_type, dst_id)`.

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, RecordId, TypeId};
use serde_json::Value;

use crate::{GenericClient, Scope, StoreResult};

/// One stored direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Direction {
    pub src_type: TypeId,
    pub src: RecordId,
    pub dst_type: TypeId,
    pub dst: RecordId,
}

/// The links held by these records, one direction each.
pub async fn held_by(
    c: &impl GenericClient,
    scope: Scope,
    ids: &[RecordId],
) -> StoreResult<Vec<Direction>> {
    const SQL: &str = "select src_id, dst_type, dst_id from record_links
        where org_id = $1 and src_type = $2 and src_id = any($3)";
    select(c, scope, ids, SQL).await
}

/// For listing records with their associations: every link of these
/// records, grouped by source then linked type, newest link first.
pub async fn for_listing(
    c: &impl GenericClient,
    scope: Scope,
    ids: &[RecordId],
) -> StoreResult<Vec<Direction>> {
    const SQL: &str = "select src_id, dst_type, dst_id from record_links
        where org_id = $1 and src_type = $2 and src_id = any($3)
        order by src_id, dst_type, created_at desc, dst_id desc";
    select(c, scope, ids, SQL).await
}

async fn select(
    c: &impl GenericClient,
    scope: Scope,
    ids: &[RecordId],
    sql: &str,
) -> StoreResult<Vec<Direction>> {
    Ok(crate::query(c, sql, &[&scope.org, &scope.type_id, &ids])
        .await?
        .iter()
        .map(|r| Direction {
            src_type: scope.type_id,
            src: r.get(0),
            dst_type: r.get(1),
            dst: r.get(2),
        })
        .collect())
}

/// Stores these directions (callers pass both directions of each link).
pub async fn insert(tx: &impl GenericClient, org: OrgId, rows: &[Direction]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let st: Vec<TypeId> = rows.iter().map(|d| d.src_type).collect();
    let si: Vec<RecordId> = rows.iter().map(|d| d.src).collect();
    let dt: Vec<TypeId> = rows.iter().map(|d| d.dst_type).collect();
    let di: Vec<RecordId> = rows.iter().map(|d| d.dst).collect();
    crate::execute(
        tx,
        "insert into record_links (org_id, src_type, src_id, dst_type, dst_id)
         select $1, u.st, u.si, u.dt, u.di
           from unnest($2::int4[], $3::int8[], $4::int4[], $5::int8[]) as u(st, si, dt, di)
             on conflict do nothing",
        &[&org, &st, &si, &dt, &di],
    )
    .await
    .map(drop)
}

/// Removes these directions (callers pass both directions of each link);
/// one statement per source type, so each reaches the primary key by prefix.
pub async fn remove(tx: &impl GenericClient, org: OrgId, rows: &[Direction]) -> StoreResult<()> {
    let mut sorted = rows.to_vec();
    sorted.sort_unstable();
    for group in sorted.chunk_by(|a, b| a.src_type == b.src_type) {
        let si: Vec<RecordId> = group.iter().map(|d| d.src).collect();
        let dt: Vec<TypeId> = group.iter().map(|d| d.dst_type).collect();
        let di: Vec<RecordId> = group.iter().map(|d| d.dst).collect();
        crate::execute(
            tx,
            "delete from record_links
          where org_id = $1 and src_type = $2 and src_id = any($3)
            and (src_id, dst_type, dst_id) in
                (select * from unnest($3::int8[], $4::int4[], $5::int8[]))",
            &[&org, &group[0].src_type, &si, &dt, &di],
        )
        .await?;
    }
    Ok(())
}

/// Removes every link of these records, in both directions (before the
/// records themselves are deleted).
pub async fn remove_all_of(
    tx: &impl GenericClient,
    scope: Scope,
    ids: &[RecordId],
) -> StoreResult<()> {
    crate::execute(
        tx,
        "with gone as (
             delete from record_links
              where org_id = $1 and src_type = $2 and src_id = any($3)
          returning src_type, src_id, dst_type, dst_id
         )
         delete from record_links l
          using gone g
          where l.org_id = $1 and l.src_type = g.dst_type and l.src_id = g.dst_id
            and l.dst_type = g.src_type and l.dst_id = g.src_id",
        &[&scope.org, &scope.type_id, &ids],
    )
    .await
    .map(drop)
}

/// A record linked to the one asked about.
#[derive(Debug, Clone)]
pub struct Linked {
    pub type_id: TypeId,
    pub id: RecordId,
    pub ext_id: Option<String>,
    pub attributes: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page of the records linked to `src` among `types`, newest link first.
pub async fn linked_page(
    c: &impl GenericClient,
    scope: Scope,
    src: RecordId,
    types: &[TypeId],
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<Linked>> {
    Ok(crate::query(
        c,
        "select l.dst_type, r.id, r.ext_id, r.attributes, r.created_at, r.updated_at
           from record_links l
           join records r on r.org_id = l.org_id and r.type_id = l.dst_type and r.id = l.dst_id
          where l.org_id = $1 and l.src_type = $2 and l.src_id = $3 and l.dst_type = any($4)
          order by l.created_at desc, l.dst_id desc
          limit $5 offset $6",
        &[&scope.org, &scope.type_id, &src, &types, &limit, &offset],
    )
    .await?
    .iter()
    .map(|r| Linked {
        type_id: r.get(0),
        id: r.get(1),
        ext_id: r.get(2),
        attributes: r.get(3),
        created_at: r.get(4),
        updated_at: r.get(5),
    })
    .collect())
}
