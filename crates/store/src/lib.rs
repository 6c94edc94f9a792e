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

pub mod error;
pub mod idempotency;
pub mod links;
pub mod liveness;
pub mod object_types;
pub mod organizations;
pub mod processes;
pub mod records;

pub use deadpool_postgres::GenericClient;
pub use error::{ErrorKind, StoreError, StoreResult, classify, describe};

/// Prepares `sql` through the connection's statement cache.
pub(crate) async fn prepared(
    c: &impl GenericClient,
    sql: &str,
) -> Result<tokio_postgres::Statement, StoreError> {
    Ok(c.prepare_cached(sql).await?)
}
