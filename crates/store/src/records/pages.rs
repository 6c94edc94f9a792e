//! The pages of `records` the API reads, and the count beside them.

use objectsync_model::RecordId;

use super::Record;
use crate::processes::Order;
use crate::{GenericClient, Scope, StoreResult};

/// A page of a type's records by id.
///
/// A deferred join: the page's ids come from a walk of the primary key
/// alone (`offset` index entries skipped, `limit` kept), and only those
/// rows are read whole. Skipping costs an index entry per row, not a heap
/// row with its attributes; where the visibility map is set (VACUUM, which
/// autovacuum runs) the walk reads no heap at all.
pub async fn page(
    c: &impl GenericClient,
    scope: Scope,
    order: Order,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<Record>> {
    Ok(crate::query(
        c,
        &page_sql(order),
        &[&scope.org, &scope.type_id, &limit, &offset],
    )
    .await?
    .iter()
    .map(record)
    .collect())
}

/// The statement [`page`] runs, with parameters org, type, limit and offset:
/// public so that tests can check its plan.
pub fn page_sql(order: Order) -> String {
    // The page's ids: the primary key walked in its own order (all three
    // columns named, so no other index can offer that order). Its rows: one
    // lookup of the whole key per id, as a lateral subquery with a `limit`
    // the planner cannot flatten. Written as a join or an `id = any(…)`,
    // the planner, trusting stale statistics that call the type small, may
    // walk all of the type's rows and filter them against the page's ids
    // instead (it did, for `desc`).
    format!(
        "select r.*
           from unnest(array(select id from records
                              where org_id = $1 and type_id = $2
                              order by org_id {o}, type_id {o}, id {o}
                              limit $3 offset $4)) with ordinality as p(id, n)
          cross join lateral (
                select id, ext_id, attributes, created_at, updated_at from records
                 where org_id = $1 and type_id = $2 and id = p.id
                 limit 1) as r
          order by p.n",
        o = order.sql()
    )
}

/// Up to `limit` records of a type after the record `after` in `order` (from
/// the first when `None`): a page that costs the same however deep it is,
/// for reading a whole type page by page (the records API's `cursor`).
pub async fn page_after(
    c: &impl GenericClient,
    scope: Scope,
    order: Order,
    after: Option<RecordId>,
    limit: i64,
) -> StoreResult<Vec<Record>> {
    // No id lies beyond these, so the first page is a page after them.
    let after = after.map_or(
        match order {
            Order::Asc => i64::MIN,
            Order::Desc => i64::MAX,
        },
        |id| id.0,
    );
    Ok(crate::query(
        c,
        &page_after_sql(order),
        &[&scope.org, &scope.type_id, &after, &limit],
    )
    .await?
    .iter()
    .map(record)
    .collect())
}

/// The statement [`page_after`] runs, with parameters org, type, the id
/// to start after and limit: public so that tests can check its plan. As
/// [`page_sql`], with the walk of the primary key starting at the key
/// after `$3` instead of skipping entries.
pub fn page_after_sql(order: Order) -> String {
    let (o, beyond) = match order {
        Order::Asc => ("asc", ">"),
        Order::Desc => ("desc", "<"),
    };
    format!(
        "select r.*
           from unnest(array(select id from records
                              where org_id = $1 and type_id = $2 and id {beyond} $3
                              order by org_id {o}, type_id {o}, id {o}
                              limit $4)) with ordinality as p(id, n)
          cross join lateral (
                select id, ext_id, attributes, created_at, updated_at from records
                 where org_id = $1 and type_id = $2 and id = p.id
                 limit 1) as r
          order by p.n"
    )
}

/// How many records of a type an organization holds: the sum of its rows in
/// `record_counts`, which triggers keep exact (see migration V25), so it
/// costs the same at ten records or ten million.
pub async fn count(c: &impl GenericClient, scope: Scope) -> StoreResult<i64> {
    Ok(crate::query_one(
        c,
        "select coalesce(sum(n), 0)::bigint from record_counts where org_id = $1 and type_id = $2",
        &[&scope.org, &scope.type_id],
    )
    .await?
    .get(0))
}

/// A row of the page statements (`id, ext_id, attributes, created_at,
/// updated_at`, in that order) as a [`Record`].
fn record(r: &tokio_postgres::Row) -> Record {
    Record {
        id: r.get(0),
        ext_id: r.get(1),
        attributes: r.get(2),
        created_at: r.get(3),
        updated_at: r.get(4),
    }
}
