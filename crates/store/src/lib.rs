//! Every SQL statement of objectsync, one module per table family, behind
//! functions that take and return the model's types. Ingest and the workers
//! reach the database only through here, so a statement and the index it
//! relies on are read side by side, and each is written once.
//!
//! Every function takes a `deadpool_postgres::GenericClient` (a pooled
//! connection or a transaction) and prepares its statement through the
//! connection's statement cache. Hot statements reach `records`,
//! `record_links` and `processes` only through unique indexes, by `= any` of
//! an array or by `on conflict` arbitration, so that no plan depends on
//! table statistics that lag behind a bulk load.
//!
//! Errors are [`StoreError`]s, classified once (transient, conflict,
//! permanent) for every caller to map to its own vocabulary.

pub mod console_sessions;
pub mod dead_letters;
pub mod deliveries;
pub mod ended;
pub mod ending;
pub mod engine;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod lanes;
pub mod limits;
pub mod links;
pub mod liveness;
pub mod object_types;
pub mod operations;
pub mod order;
pub mod organizations;
pub mod partitions;
pub mod processes;
pub mod records;
pub mod waits;
pub mod webhooks;
pub mod workers;

pub use deadpool_postgres::GenericClient;

/// The records of one object type of one organization: what every
/// statement on `records` and `record_links` is confined to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub org: objectsync_model::OrgId,
    pub type_id: objectsync_model::TypeId,
}

impl Scope {
    pub fn of(org: objectsync_model::OrgId, type_id: objectsync_model::TypeId) -> Self {
        Self { org, type_id }
    }
}
pub use engine::Engine;
pub use error::{ErrorKind, StoreError, StoreResult, classify, describe};

type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// Runs `sql`, prepared through the connection's statement cache; the rows
/// it changed.
pub(crate) async fn execute(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<u64> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, params).await?)
}

/// Like [`execute`], for the rows a query returns.
pub(crate) async fn query(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Vec<tokio_postgres::Row>> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query(&stmt, params).await?)
}

/// Like [`query`], for exactly one row.
pub(crate) async fn query_one(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<tokio_postgres::Row> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_one(&stmt, params).await?)
}

/// Like [`query`], for at most one row.
pub(crate) async fn query_opt(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Option<tokio_postgres::Row>> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params).await?)
}
