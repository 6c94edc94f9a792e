//! PostgreSQL: the connection pool and the migrations. Every statement of
//! the service itself lives in `objectsync-store`.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_util::sync::CancellationToken;

use crate::settings::DatabaseSettings;

mod app_role;
pub mod citus;
mod lag;
mod reads;
mod tls;

pub use app_role::{APP_ROLE, set_password as set_app_password, setup};
pub use reads::{ReadClient, ReadPool, STANDBY_RETRY, Server, StandbyState};
pub use tls::{PgTls, SslMode, Target, TlsSetupError};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Key of the advisory lock that serializes migrations between processes
/// starting at the same time ("objsync" in ASCII).
const MIGRATION_LOCK: i64 = 0x006f_626a_7379_6e63;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL: {}", objectsync_store::describe(.0))]
    Url(#[source] tokio_postgres::Error),
    /// A URL that names no server to connect to.
    #[error("invalid database URL: it names no host (postgres://user@HOST:5432/database)")]
    NoHost,
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
    #[error("could not get a database connection: {}", describe_checkout(.0))]
    Checkout(#[from] deadpool_postgres::PoolError),
    #[error("stopped while waiting for the database schema")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] objectsync_store::StoreError),
    /// The schema cannot be distributed over a Citus cluster as it is.
    #[error("citus: {0}")]
    Citus(String),
    /// Migrations are pending and the user connected may not apply them
    /// (the app role): they need the schema's owner.
    #[error(
        "the database schema is at {}, this build needs version {wanted}, and the user {user} \
         may not change the schema: run `objectsync-ingest migrate` as the schema's owner",
        .applied.map_or("no version".to_owned(), |v| format!("version {v}"))
    )]
    NotSchemaOwner {
        user: String,
        applied: Option<i32>,
        wanted: i32,
    },
}

impl DbError {
    /// Whether the settings themselves are wrong (a URL that cannot be
    /// read, TLS files that cannot be used, no host, a password the server
    /// asks for and the URL lacks): waiting does not mend those, so a
    /// process stops at start with the message instead of retrying.
    pub fn is_configuration(&self) -> bool {
        match self {
            Self::Url(_) | Self::NoHost | Self::Tls(_) => true,
            Self::Postgres(e) => is_configuration(e),
            Self::Checkout(deadpool_postgres::PoolError::Backend(e)) => is_configuration(e),
            _ => false,
        }
    }
}

/// tokio-postgres tells a configuration it cannot use (no host, a
/// password missing) only in its message, and without an SQLSTATE, like a
/// connection that failed.
fn is_configuration(e: &tokio_postgres::Error) -> bool {
    e.to_string().starts_with("invalid configuration")
}

/// A pool's error with the cause of a failed connection (deadpool and
/// tokio-postgres each show only their own words: "error performing TLS
/// handshake", not that the certificate has an unknown issuer).
fn describe_checkout(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => objectsync_store::describe(e),
        other => other.to_string(),
    }
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

    /// The pool's kind, after the process's name in `application_name`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Apply => "apply",
            Self::Monitors => "monitors",
        }
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
    pool_on(settings.url.expose_secret(), settings, sessions, options)
}

/// Where the lag-tolerant reads of `sessions` go: a pool on
/// `database.read_url` with the primary's as fallback, or the primary's
/// `primary` alone when no read URL is set (see [`ReadPool`]). The standby
/// gets the same TLS handling, timeouts and pool size as the primary.
pub fn read_pool(
    settings: &DatabaseSettings,
    primary: Pool,
    sessions: Sessions,
    options: Option<&str>,
) -> Result<ReadPool, DbError> {
    let url = settings
        .read_url
        .as_ref()
        .map(|u| u.expose_secret())
        .filter(|u| !u.is_empty());
    Ok(match url {
        Some(url) => ReadPool::with_standby(
            primary,
            pool_on(url, settings, sessions, options)?,
            settings.read_max_lag(),
        ),
        None => ReadPool::primary_only(primary),
    })
}

/// A pool of `sessions` on the server `url` names.
fn pool_on(
    url: &str,
    settings: &DatabaseSettings,
    sessions: Sessions,
    options: Option<&str>,
) -> Result<Pool, DbError> {
    let Target {
        mut config, tls, ..
    } = Target::parse(url)?;
    let ours = match options {
        Some(options) => format!("{} {options}", sessions.options(settings)),
        None => sessions.options(settings),
    };
    let merged = match config.get_options() {
        Some(existing) => format!("{existing} {ours}"),
        None => ours,
    };
    config.options(merged);
    if config.get_application_name().is_none() && !settings.application_name.is_empty() {
        config.application_name(format!(
            "{}/{}",
            settings.application_name,
            sessions.label()
        ));
    }
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
    migrate_until(url, None).await
}

/// Like [`migrate`], stopping after migration `version` when given: for
/// tests that upgrade a database of an earlier version.
pub async fn migrate_until(url: &str, version: Option<i32>) -> Result<usize, DbError> {
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
    let target = version.map_or(refinery::Target::Latest, refinery::Target::Version);
    let result = match newest_applied(&client).await {
        // A newer release migrated this database and this one still runs
        // beside it during a rolling upgrade: its schema is a superset of
        // ours (see ARCHITECTURE.md, Upgrades), so start on it as it is.
        // (refinery would refuse versions it does not know.)
        Ok(Some(applied)) if applied > latest_migration() => {
            tracing::info!(
                applied,
                known = latest_migration(),
                "the database schema is newer than this build; nothing to migrate"
            );
            Ok(None)
        }
        Ok(_) => embedded::migrations::runner()
            .set_target(target)
            .run_async(&mut client)
            .await
            .map(Some)
            .map_err(DbError::from),
        Err(e) => Err(e),
    };
    let placed = match &result {
        Ok(report) => {
            let applied = report.as_ref().map_or(0, |r| r.applied_migrations().len());
            citus::place(&mut client, applied).await
        }
        Err(_) => Ok(()),
    };
    // Dropping the connection would release the lock too; be explicit.
    let _ = client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let Some(report) = result? else {
        placed?;
        return Ok(0);
    };
    for m in report.applied_migrations() {
        tracing::info!(version = m.version(), name = m.name(), "migration applied");
    }
    placed?;
    Ok(report.applied_migrations().len())
}

/// Applies pending migrations, if there are any, like [`migrate`]; a
/// schema already current is only read (the newest version applied), so
/// this gets through as the app role, which may not run migrations. With
/// migrations pending and a user who may not apply them, it fails with
/// [`DbError::NotSchemaOwner`] without trying. Returns how many migrations
/// were applied.
pub async fn migrate_if_behind(url: &str) -> Result<usize, DbError> {
    let client = match connect(url).await {
        // No database yet: `migrate` creates it.
        Err(DbError::Postgres(e)) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
            return migrate(url).await;
        }
        other => other?,
    };
    let wanted = latest_migration();
    let applied = newest_applied(&client).await?;
    if applied.is_some_and(|v| v >= wanted) && !citus::pending(&client).await? {
        return Ok(0);
    }
    if !app_role::may_change_schema(&client).await? {
        let user = client.query_one("select current_user::text", &[]).await?;
        return Err(DbError::NotSchemaOwner {
            user: user.get(0),
            applied,
            wanted,
        });
    }
    drop(client);
    migrate(url).await
}

/// Creates the database `url` names, through the `postgres` maintenance
/// database of the same server, so that a first `migrate` on a fresh server
/// just works.
async fn create_database(url: &str) -> Result<(), DbError> {
    let Target { config, tls, .. } = Target::parse(url)?;
    let name = database_name(&config).to_owned();
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

/// The database a connection made with `config` opens: the one it names,
/// or, like libpq, the user's name when it names none (so that the
/// database created is the one connected to afterwards).
fn database_name(config: &tokio_postgres::Config) -> &str {
    config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres")
}

/// The newest migration applied to the database, if any.
pub async fn applied_version(pool: &Pool) -> Result<Option<i32>, DbError> {
    newest_applied(&**pool.get().await?).await
}

/// The newest migration applied to the database `client` is on, if any.
async fn newest_applied(client: &tokio_postgres::Client) -> Result<Option<i32>, DbError> {
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
/// on a Citus coordinator the tables placed.
async fn schema_ready(pool: &Pool, wanted: i32) -> Result<Option<i32>, DbError> {
    let applied = applied_version(pool).await?;
    if applied.is_some_and(|v| v >= wanted) && citus::pending(&*pool.get().await?).await? {
        return Ok(Some(wanted - 1));
    }
    Ok(applied)
}

/// Waits until the database holds every migration this build knows, so a
/// worker started before ingest (or before `migrate`) does not fail. Why
/// it waits is logged at first, when it changes, and every minute; a
/// configuration error ends the wait (see [`DbError::is_configuration`]).
pub async fn wait_for_schema(pool: &Pool, cancel: &CancellationToken) -> Result<(), DbError> {
    let wanted = latest_migration();
    let mut said: Option<(String, std::time::Instant)> = None;
    loop {
        let (why, reachable) = match schema_ready(pool, wanted).await {
            Ok(Some(v)) if v >= wanted => return Ok(()),
            Ok(v) => (format!("applied {v:?}, wanted {wanted}"), true),
            Err(e) if e.is_configuration() => return Err(e),
            Err(e) => (e.to_string(), false),
        };
        let due = said
            .as_ref()
            .is_none_or(|(last, at)| *last != why || at.elapsed() >= Duration::from_secs(60));
        if due && reachable {
            tracing::info!(%why, "waiting for the database schema");
        } else if due {
            tracing::warn!(error = %why, "waiting for the database");
        }
        if due {
            said = Some((why, std::time::Instant::now()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_created_is_the_one_the_url_connects_to() {
        for (url, name) in [
            ("postgres://app@db.example/objectsync", "objectsync"),
            ("postgres://app:pw@db.example:5433", "app"),
            ("postgres://app@db.example/", "app"),
            ("host=db.example user=owner", "owner"),
        ] {
            let target = Target::parse(url).unwrap();
            assert_eq!(database_name(&target.config), name, "{url}");
        }
    }
}
