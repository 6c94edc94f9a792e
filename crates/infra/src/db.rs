//! PostgreSQL: the connection pool and the migrations. Every statement of
//! the service itself lives in `objectsync-store`.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_util::sync::CancellationToken;

use crate::settings::DatabaseSettings;

pub mod citus;
mod tls;

pub use tls::{PgTls, SslMode, Target, TlsSetupError};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Key of the advisory lock that serializes migrations between processes
/// starting at the same time ("objsync" in ASCII).
const MIGRATION_LOCK: i64 = 0x006f_626a_7379_6e63;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// The URL's `sslmode`, `sslrootcert`, `sslcert` or `sslkey` cannot
    /// be used as they are.
    #[error("database URL: {0}")]
    Tls(#[from] TlsSetupError),
    #[error("could not build the connection pool: {0}")]
    Pool(#[from] deadpool_postgres::BuildError),
    #[error("database: {}", objectsync_store::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
    #[error("could not get a database connection: {0}")]
    Checkout(#[from] deadpool_postgres::PoolError),
    #[error("stopped while waiting for the database schema")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] objectsync_store::StoreError),
    /// The schema cannot be distributed over a Citus cluster as it is.
    #[error("citus: {0}")]
    Citus(String),
}

/// What a pool's sessions do, which decides how long PostgreSQL lets their
/// statements run and wait for locks (`statement_timeout`, `lock_timeout`),
/// so that no request, batch or monitor waits without bound: a timed-out
/// statement fails with SQLSTATE 57014 or 55P03, which the store classifies
/// as transient (503 for a request, a retry for a batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sessions {
    /// Request handlers (ingest's API, admin API and console), the admin
    /// CLI and embedded publishers: `database.statement_timeout_ms` and
    /// `database.lock_timeout_ms`.
    Requests,
    /// Workers applying batches, waiting for their turn included:
    /// `database.apply_*`.
    Apply,
    /// Background monitors (stale processes, dead letters, heartbeats,
    /// gauges, sweeps): `database.monitor_*`.
    Monitors,
}

impl Sessions {
    /// The server settings of these sessions (`-c name=value`).
    pub fn options(self, settings: &DatabaseSettings) -> String {
        let (statement, lock) = match self {
            Self::Requests => (settings.statement_timeout_ms, settings.lock_timeout_ms),
            Self::Apply => (
                settings.apply_statement_timeout_ms,
                settings.apply_lock_timeout_ms,
            ),
            Self::Monitors => (
                settings.monitor_statement_timeout_ms,
                settings.monitor_lock_timeout_ms,
            ),
        };
        format!("-c statement_timeout={statement} -c lock_timeout={lock}")
    }
}

/// Connections of a monitors' pool: monitors run one statement at a time
/// each, and a pool of their own keeps them out of the way of requests and
/// batches (and those out of theirs).
pub const MONITOR_POOL_SIZE: usize = 2;

/// Builds a pool of request-handler sessions (see [`Sessions`]).
/// Connections are opened lazily, so this succeeds even while the database
/// is down; callers find out on first use.
pub fn pool(settings: &DatabaseSettings) -> Result<Pool, DbError> {
    pool_for(settings, Sessions::Requests, None)
}

/// Like [`pool`], with more server settings for every connection
/// (`-c name=value`).
pub fn pool_with_options(
    settings: &DatabaseSettings,
    options: Option<&str>,
) -> Result<Pool, DbError> {
    pool_for(settings, Sessions::Requests, options)
}

/// A pool of `sessions`, with `options` as well; a monitors' pool has
/// [`MONITOR_POOL_SIZE`] connections, the others `database.pool_size`.
pub fn pool_for(
    settings: &DatabaseSettings,
    sessions: Sessions,
    options: Option<&str>,
) -> Result<Pool, DbError> {
    let Target {
        mut config, tls, ..
    } = Target::parse(settings.url.expose_secret())?;
    let ours = match options {
        Some(options) => format!("{} {options}", sessions.options(settings)),
        None => sessions.options(settings),
    };
    let merged = match config.get_options() {
        Some(existing) => format!("{existing} {ours}"),
        None => ours,
    };
    config.options(merged);
    let size = match sessions {
        Sessions::Monitors => MONITOR_POOL_SIZE,
        Sessions::Requests | Sessions::Apply => settings.pool_size,
    };
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let timeout = Some(Duration::from_millis(settings.pool_timeout_ms));
    Ok(Pool::builder(manager)
        .max_size(size)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(Runtime::Tokio1)
        .build()?)
}

/// One connection outside the pool, for migrations and administration.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, DbError> {
    let target = Target::parse(url)?;
    let (client, connection) = target.config.connect(target.tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "migration connection closed");
        }
    });
    Ok(client)
}

/// The newest migration version this build knows.
pub fn latest_migration() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// Applies pending migrations under an advisory lock, so that several
/// instances starting at once apply each migration exactly once; on a
/// Citus coordinator it then places the tables not placed yet (see
/// [`citus`]). Returns how many migrations were applied.
pub async fn migrate(url: &str) -> Result<usize, DbError> {
    let mut client = match connect(url).await {
        Err(DbError::Postgres(e)) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
            create_database(url).await?;
            connect(url).await?
        }
        other => other?,
    };
    client
        .execute("select pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = embedded::migrations::runner().run_async(&mut client).await;
    let placed = match &result {
        Ok(_) => place_on_citus(&mut client).await,
        Err(_) => Ok(()),
    };
    // Dropping the connection would release the lock too; be explicit.
    let _ = client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let report = result?;
    for m in report.applied_migrations() {
        tracing::info!(version = m.version(), name = m.name(), "migration applied");
    }
    placed?;
    Ok(report.applied_migrations().len())
}

/// On a Citus coordinator, distributes the tables the migrations made
/// (nothing on plain PostgreSQL).
async fn place_on_citus(client: &mut tokio_postgres::Client) -> Result<(), DbError> {
    if !citus::is_coordinator(client).await? {
        return Ok(());
    }
    let placed = citus::distribute(client).await?;
    if !placed.reference.is_empty() || !placed.distributed.is_empty() {
        tracing::info!(
            reference = ?placed.reference,
            distributed = ?placed.distributed,
            "citus: tables placed"
        );
    }
    Ok(())
}

/// Creates the database `url` names, through the `postgres` maintenance
/// database of the same server, so that a first `migrate` on a fresh server
/// just works.
async fn create_database(url: &str) -> Result<(), DbError> {
    let Target { config, tls, .. } = Target::parse(url)?;
    let name = config.get_dbname().unwrap_or("objectsync").to_owned();
    let mut maintenance = config.clone();
    maintenance.dbname("postgres");
    let (client, connection) = maintenance.connect(tls).await?;
    tokio::spawn(connection);
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match client
        .execute(&format!("create database {quoted}"), &[])
        .await
    {
        Ok(_) => tracing::info!(database = %name, "database created"),
        // Another instance created it first.
        Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The newest migration applied to the database, if any.
pub async fn applied_version(pool: &Pool) -> Result<Option<i32>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt("select max(version) from refinery_schema_history", &[])
        .await;
    match row {
        Ok(row) => Ok(row.and_then(|r| r.get(0))),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether the schema is complete: every migration this build knows, and
/// on a Citus coordinator every table placed.
async fn schema_ready(pool: &Pool, wanted: i32) -> Result<Option<i32>, DbError> {
    let applied = applied_version(pool).await?;
    if applied.is_some_and(|v| v >= wanted) && citus::pending(&*pool.get().await?).await? {
        return Ok(Some(wanted - 1));
    }
    Ok(applied)
}

/// Waits until the database holds every migration this build knows, so a
/// worker started before ingest (or before `migrate`) does not fail.
pub async fn wait_for_schema(pool: &Pool, cancel: &CancellationToken) -> Result<(), DbError> {
    let wanted = latest_migration();
    let mut logged = false;
    loop {
        match schema_ready(pool, wanted).await {
            Ok(Some(v)) if v >= wanted => return Ok(()),
            Ok(v) if !logged => {
                tracing::info!(applied = ?v, wanted, "waiting for the database schema");
                logged = true;
            }
            Err(e) if !logged => {
                tracing::warn!(error = %e, "waiting for the database");
                logged = true;
            }
            _ => {}
        }
        tokio::select! {
            () = cancel.cancelled() => return Err(DbError::Cancelled),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Whether the database is one PostgreSQL or a Citus coordinator whose
/// tables are distributed: what the store must know to keep the counts.
pub async fn engine(pool: &Pool) -> Result<objectsync_store::Engine, DbError> {
    Ok(objectsync_store::Engine::detect(&pool.get().await?).await?)
}

/// Whether the database answers a trivial query.
pub async fn ping(pool: &Pool) -> bool {
    match pool.get().await {
        Ok(client) => client.simple_query("select 1").await.is_ok(),
        Err(_) => false,
    }
}
