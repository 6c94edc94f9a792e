//! A scratch Citus cluster — a coordinator and two workers, each a
//! throwaway PostgreSQL on a loopback port of its own with
//! `shared_preload_libraries = 'citus'` — and the databases tests make on
//! it.
//!
//! On Citus a database is not one object of the cluster: a new database
//! needs the `citus` extension created on every node and the nodes
//! registered again in it (`citus_set_coordinator_host`, `citus_add_node`).
//! [`create_database`] does that for a sandbox, reading the nodes from the
//! coordinator's `postgres` database, where [`CitusCluster::start`]
//! registered them.
//!
//! Needs Citus installed into PostgreSQL 15 (`citus.so`); CI builds it from
//! the vendored source when it is missing.

use std::time::Duration;

use objectsync_infra::db;

use crate::sandbox::with_database;
use crate::scratch_pg::ScratchServer;

/// The variable that points the sandboxes at a Citus coordinator: the URL
/// of its `postgres` database. Unset, tests use plain PostgreSQL.
pub const CITUS_ENV: &str = "OBJECTSYNC_TEST_CITUS";

/// Whether the tests run on Citus (`OBJECTSYNC_TEST_CITUS` is set).
pub fn testing_on_citus() -> bool {
    std::env::var(CITUS_ENV).is_ok_and(|v| !v.is_empty())
}

/// For a test of something objectsync does not do on Citus: true (and
/// says why on stderr) when the tests run there, so the test returns early.
/// Each reason is listed in docs/SCALING.md.
pub fn not_on_citus(reason: &str) -> bool {
    let skip = testing_on_citus();
    if skip {
        eprintln!("not run on Citus: {reason}");
    }
    skip
}

/// Shards per distributed table in scratch clusters. Citus's default (32)
/// would make each test database create 32 shards of ten tables; four
/// still spread organizations over both workers.
pub const TEST_SHARD_COUNT: u32 = 4;

/// Held while a database is made and migrated on Citus (the template, or a
/// sandbox left unmigrated): Citus propagates role changes, which belong
/// to the whole cluster, to every node, and two databases doing so at once
/// fail with "tuple concurrently updated".
pub static SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The server settings of every node.
fn node_conf() -> String {
    format!(
        "shared_preload_libraries = 'citus'\nmax_connections = 400\nshared_buffers = 64MB\n\
         citus.shard_count = {TEST_SHARD_COUNT}\n"
    )
}

/// A running coordinator and its workers. Dropping it stops them all and
/// removes their directories.
pub struct CitusCluster {
    coordinator: ScratchServer,
    workers: Vec<ScratchServer>,
}

impl CitusCluster {
    /// Whether Citus is installed into this machine's PostgreSQL 15.
    pub fn installed() -> bool {
        std::path::Path::new("/usr/lib/postgresql/15/lib/citus.so").exists()
    }

    /// Starts a coordinator and `workers` workers and registers the workers
    /// in the coordinator's `postgres` database; panics, saying what
    /// failed, if it cannot.
    pub fn start(workers: usize) -> Self {
        assert!(
            Self::installed(),
            "Citus is not installed into PostgreSQL 15 (build it from the vendored source)"
        );
        let conf = node_conf();
        let coordinator = ScratchServer::start("citus-coordinator", &conf);
        let workers: Vec<ScratchServer> = (0..workers)
            .map(|_| ScratchServer::start("citus-worker", &conf))
            .collect();
        let cluster = Self {
            coordinator,
            workers,
        };
        for node in cluster.nodes() {
            node.psql("postgres", "create extension citus");
        }
        let mut register = format!(
            "select citus_set_coordinator_host('127.0.0.1', {});",
            cluster.coordinator.port()
        );
        for w in &cluster.workers {
            register.push_str(&format!(
                "select citus_add_node('127.0.0.1', {});",
                w.port()
            ));
        }
        cluster.coordinator.psql("postgres", &register);
        cluster
    }

    /// The coordinator's port.
    pub fn port(&self) -> u16 {
        self.coordinator.port()
    }

    /// The workers' ports.
    pub fn worker_ports(&self) -> Vec<u16> {
        self.workers.iter().map(ScratchServer::port).collect()
    }

    /// `postgres://postgres@127.0.0.1:{port}/{database}?sslmode=disable`
    /// of the coordinator: `create extension citus` turns TLS on with a
    /// self-signed X.509 v1 certificate, which rustls refuses, and on
    /// loopback TLS buys nothing.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port()
        )
    }

    /// The coordinator's log and the workers', for a failure's message.
    pub fn logs(&self) -> String {
        self.nodes()
            .map(|n| format!("--- node on port {}\n{}", n.port(), n.log()))
            .collect()
    }

    fn nodes(&self) -> impl Iterator<Item = &ScratchServer> {
        std::iter::once(&self.coordinator).chain(&self.workers)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CitusError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// The `(host, port)` of every node registered in the coordinator whose
/// `postgres` database `admin_url` names: the coordinator first.
async fn nodes(admin_url: &str) -> Result<Vec<(String, i32)>, CitusError> {
    let admin = db::connect(admin_url).await?;
    let rows = admin
        .query(
            "select nodename, nodeport from pg_dist_node
              where noderole = 'primary' order by groupid <> 0, nodeid",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A worker's URL, with the coordinator URL's parameters (`sslmode`).
fn node_url(admin_url: &str, host: &str, port: i32, database: &str) -> String {
    let query = admin_url.split_once('?').map_or("", |(_, q)| q);
    format!("postgres://postgres@{host}:{port}/{database}?{query}")
}

/// The `postgres` database of every node, the coordinator first.
async fn node_admin_urls(admin_url: &str) -> Result<Vec<String>, CitusError> {
    let nodes = nodes(admin_url).await?;
    let mut urls = vec![admin_url.to_owned()];
    urls.extend(
        nodes
            .iter()
            .skip(1)
            .map(|(h, p)| node_url(admin_url, h, *p, "postgres")),
    );
    Ok(urls)
}

/// The migrated, distributed database each sandbox is cloned from, by
/// coordinator, once this process has found or made it.
static TEMPLATES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Creates `name` migrated and distributed, as a copy of a template made
/// the same way on every node (`create database … template`, the same name
/// on each, so the copies' metadata and shards agree): a few hundred
/// milliseconds where making, migrating and distributing a database takes
/// seconds, most of them spent while no other sandbox may do the same.
pub async fn create_migrated_database(admin_url: &str, name: &str) -> Result<(), CitusError> {
    let template = template(admin_url).await?;
    // On every node at once: a copy takes most of a second per node.
    let copies = node_admin_urls(admin_url).await?.into_iter().map(|url| {
        let sql = format!("create database {name} template {template}");
        async move {
            let admin = db::connect(&url).await?;
            admin.batch_execute(&sql).await?;
            Ok::<_, CitusError>(())
        }
    });
    futures_util::future::try_join_all(copies).await?;
    Ok(())
}

fn known_template(admin_url: &str) -> Option<String> {
    let known = TEMPLATES.lock().unwrap_or_else(|e| e.into_inner());
    known
        .iter()
        .find(|(url, _)| url == admin_url)
        .map(|(_, t)| t.clone())
}

/// The advisory lock (on the coordinator's `postgres` database) held
/// while the cluster's template is looked for and made: test processes
/// run one after another against one cluster in CI, and the second finds
/// the template the first made.
const TEMPLATE_LOCK: i64 = 0x6f73_7465_6d70; // "ostemp"

/// The cluster's template on the coordinator `admin_url` names, made on
/// first use by whichever process needs it first — created, migrated (so
/// distributed), then closed to connections and emptied of them (a
/// template must have none, and Citus's maintenance daemon keeps one) —
/// and found by every process after it; one a process left half-made (it
/// still takes connections) is dropped and made again. Named by the latest
/// migration, so a cluster kept across a change of the migrations makes a
/// new one.
async fn template(admin_url: &str) -> Result<String, CitusError> {
    let _setup = SETUP.lock().await;
    if let Some(t) = known_template(admin_url) {
        return Ok(t);
    }
    let name = format!("objectsync_citus_template_v{}", db::latest_migration());
    let admin = db::connect(admin_url).await?;
    admin
        .execute("select pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
        .await?;
    let made = match admin
        .query_opt(
            "select datallowconn from pg_database where datname = $1",
            &[&name],
        )
        .await?
    {
        // Closed to connections on the coordinator: the last step of
        // making it, done there after every worker.
        Some(row) if !row.get::<_, bool>(0) => Ok(()),
        // Left half-made by a process that died making it.
        Some(_) => {
            drop_database(admin_url, &name).await;
            make_template(admin_url, &name).await
        }
        None => make_template(admin_url, &name).await,
    };
    // Ends with the session too, if this process dies while holding it.
    admin
        .execute("select pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
        .await?;
    made?;
    TEMPLATES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((admin_url.to_owned(), name.clone()));
    Ok(name)
}

/// Makes the template `name` (see [`template`]).
async fn make_template(admin_url: &str, name: &str) -> Result<(), CitusError> {
    create_database(admin_url, name).await?;
    db::migrate(&with_database(admin_url, name)).await?;
    // The coordinator (first in the list) last: once it is closed, the
    // template is whole (see [`template`]).
    for url in node_admin_urls(admin_url).await?.into_iter().rev() {
        let admin = db::connect(&url).await?;
        admin
            .batch_execute(&format!(
                "alter database {name} allow_connections false;
                 select pg_terminate_backend(pid) from pg_stat_activity where datname = '{name}';"
            ))
            .await?;
    }
    // Ended sessions are gone a moment after they are told to go.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// Creates `name` on the coordinator (`admin_url`, its `postgres`
/// database) and on every worker, with the extension on each and the
/// nodes registered in it: what `migrate` then finds and distributes.
pub async fn create_database(admin_url: &str, name: &str) -> Result<(), CitusError> {
    let nodes = nodes(admin_url).await?;
    for (i, (host, port)) in nodes.iter().enumerate() {
        let url = match i {
            0 => admin_url.to_owned(),
            _ => node_url(admin_url, host, *port, "postgres"),
        };
        let admin = db::connect(&url).await?;
        admin
            .batch_execute(&format!("create database {name}"))
            .await?;
        let client = db::connect(&with_database(&url, name)).await?;
        client.batch_execute("create extension citus").await?;
    }
    let coordinator = db::connect(&with_database(admin_url, name)).await?;
    for (i, (host, port)) in nodes.iter().enumerate() {
        let register = match i {
            0 => "select citus_set_coordinator_host($1, $2)",
            _ => "select citus_add_node($1, $2)",
        };
        coordinator.execute(register, &[host, port]).await?;
    }
    Ok(())
}

/// Drops `name` on the coordinator and on every worker (best effort: for
/// cleanup after a test).
pub async fn drop_database(admin_url: &str, name: &str) {
    let drops = node_admin_urls(admin_url)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|url| async move {
            let Ok(admin) = db::connect(&url).await else {
                return;
            };
            // The maintenance daemon may hold a connection a moment longer.
            for _ in 0..3 {
                let dropped = admin
                    .batch_execute(&format!("drop database if exists {name} with (force)"))
                    .await;
                if dropped.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    futures_util::future::join_all(drops).await;
}
