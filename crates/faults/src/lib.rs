//! The fault suite behind `objectsync-faults`: drives sustained load through
//! the real HTTP API and the AMQP inbox while workers and the inbox's
//! ingest replica are SIGKILLed and RabbitMQ and PostgreSQL restart, then
//! checks a ledger of every batch that got a `202`.
//!
//! It restarts the machine's services, so it runs alone (CI runs it after
//! the tests, never beside them). The HTTP API's ingest runs in this
//! process (it is never killed); workers and the ingest replica that
//! consumes the inbox are child processes.
//!
//! With `cluster`, it restarts none of the machine's services: it starts
//! three RabbitMQ nodes of its own, clustered, points ingest and the
//! workers at all three, and SIGKILLs (then restarts) the node that leads
//! the most queues, twice (see `cluster` and `node_faults`).
//!
//! With `citus`, it restarts none of the machine's services either: the
//! database is a Citus coordinator and two workers of its own on loopback
//! (or the coordinator `OBJECTSYNC_TEST_CITUS` names, under
//! `objectsync-citus`), and the faults are SIGKILLs of objectsync's
//! workers only.

mod chaos;
mod children;
mod cluster;
mod events;
mod inbox;
mod load;
mod node_faults;
mod report;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use objectsync_testkit::citus::{CITUS_ENV, CitusCluster};
use objectsync_testkit::{Sandbox, spawn_app_in};
use serde_json::json;
use tokio::time::Instant;

pub use chaos::{BROKER_RESTART, DATABASE_RESTART};
pub use events::EventFindings;
pub use verify::Findings;

/// How hard and how long to shake the system.
#[derive(Debug, Clone)]
pub struct Options {
    pub duration: Duration,
    pub producers: usize,
    /// Producers over the AMQP inbox, served by an ingest replica of its
    /// own that is SIGKILLed too (0: no inbox, no replica).
    pub inbox_producers: usize,
    /// Ranges of 100 records each producer cycles through.
    pub ranges: usize,
    pub workers: usize,
    pub kill_every: Duration,
    pub restart_services: bool,
    pub broker_cmd: String,
    pub database_cmd: String,
    /// How long processes may take to end after the load stops.
    pub settle: Duration,
    /// A scratch Citus cluster (a coordinator and two workers on loopback)
    /// for the database; only objectsync's workers are killed, none of the
    /// machine's services restarted. No completion events are written on
    /// Citus, so none are checked.
    pub citus: bool,
    /// Three scratch RabbitMQ nodes in a cluster, two of them killed in
    /// turn, instead of restarts of the machine's services.
    pub cluster: bool,
}

/// Nodes of the `cluster` mode's RabbitMQ cluster.
const CLUSTER_NODES: usize = 3;

/// Runs the suite, prints its figures, and says whether every guarantee held.
pub async fn run(opts: &Options) -> Result<bool, String> {
    let cluster = match opts.cluster {
        true => Some(start_cluster().await?),
        false => None,
    };
    let urls = cluster.as_ref().map(|(c, _)| c.urls());
    let (citus, citus_url) = match opts.citus {
        true => {
            let (cluster, url) = citus_cluster().await?;
            (cluster, Some(url))
        }
        false => (None, None),
    };
    let sandbox = match &citus_url {
        Some(url) => Sandbox::create_on_citus("test", url).await,
        None => Sandbox::create_on_brokers("test", urls.as_deref()).await,
    };
    // With inbox producers, only the replica that is killed consumes the
    // inbox, so that every message goes through it.
    let app = spawn_app_in(sandbox, 0, |s| {
        s.database.pool_size = 16;
        s.inbox.consume = opts.inbox_producers == 0;
    })
    .await;
    let cluster_formed = survey(cluster.as_ref(), &app.settings.amqp.prefix)?;
    let org = item_org(&app).await;
    // Bound before the first batch: it keeps every event through restarts.
    let tap = objectsync_testkit::events::EventTap::bind(&app.settings.amqp)
        .await
        .map_err(|e| format!("could not bind a queue to the events exchange: {e}"))?;
    let log_dir =
        std::env::temp_dir().join(format!("objectsync-faults-{}", app.settings.amqp.prefix));
    let mut workers = children::Children::workers(&app.settings, opts.workers, log_dir.clone())
        .map_err(|e| format!("could not start workers: {e}"))?;
    let mut replicas = match opts.inbox_producers {
        0 => None,
        _ => Some(
            children::Children::inbox_replicas(&app.settings, 1, log_dir)
                .map_err(|e| format!("could not start the inbox's ingest replica: {e}"))?,
        ),
    };
    eprintln!(
        "[faults] {} producers and {} over the inbox, {} workers, {:?} of load; logs in {}",
        opts.producers,
        opts.inbox_producers,
        opts.workers,
        opts.duration,
        workers.log_dir().display()
    );

    let ledger = Arc::new(load::Ledger::default());
    let start = Instant::now();
    // The cluster's node faults hold the load open until they are over.
    let until = Arc::new(load::Deadline::new(match cluster {
        Some(_) => start + opts.duration * 10,
        None => start + opts.duration,
    }));
    let progress = tokio::spawn(report::progress(ledger.clone(), app.pool.clone(), start));
    let not_ready = Arc::new(std::sync::Mutex::new(Vec::new()));
    let probe = tokio::spawn(report::probe_readiness(
        format!("{}/readyz", app.address),
        not_ready.clone(),
    ));
    let restarts = opts.restart_services && !opts.cluster && !opts.citus;
    let schedule = chaos::Schedule {
        kill_every: opts.kill_every,
        broker_at: restarts.then(|| opts.duration / 3),
        database_at: restarts.then(|| opts.duration * 2 / 3),
        broker_cmd: opts.broker_cmd.clone(),
        database_cmd: opts.database_cmd.clone(),
    };
    let client = reqwest::Client::new();
    let producers = (0..opts.producers).map(|id| {
        let producer = load::Producer {
            id,
            ranges: opts.ranges,
            base: &app.address,
            org: &org,
            client: &client,
            ledger: &ledger,
        };
        let until = until.clone();
        async move { producer.run(&until).await }
    });
    let exchange = app.topology().inbox_exchange;
    let inbox_producers = (0..opts.inbox_producers).map(|k| {
        let producer = inbox::InboxProducer {
            id: opts.producers + k,
            ranges: opts.ranges,
            amqp: &app.settings.amqp,
            exchange: &exchange,
            org: &org,
            ledger: &ledger,
        };
        let until = until.clone();
        async move { producer.run(&until).await }
    });
    let node_faults = cluster.map(|(c, _)| {
        tokio::spawn(node_faults::run(
            c,
            app.settings.amqp.prefix.clone(),
            start,
            opts.duration,
            until.clone(),
        ))
    });
    let (_, _, faults) = tokio::join!(
        futures_join(producers),
        futures_join(inbox_producers),
        chaos::run(
            &mut workers,
            replicas.as_mut(),
            &ledger,
            &schedule,
            start,
            &until
        )
    );
    let (cluster, node_faults) = match node_faults {
        Some(task) => {
            let (c, f) = task.await.map_err(|e| format!("cluster faults: {e}"))?;
            (Some(c), f)
        }
        None => (None, Vec::new()),
    };
    eprintln!(
        "[faults] {:>5.1}s  load stopped; waiting for every process to end",
        start.elapsed().as_secs_f64()
    );
    let settled = verify::settle(&app.pool, opts.settle).await;
    let unpublished = events::wait_for_outbox(&app.pool, opts.settle).await;
    progress.abort();
    probe.abort();
    eprintln!(
        "[faults] {:>5.1}s  settled; stopping workers with SIGTERM",
        start.elapsed().as_secs_f64()
    );
    let mut shutdown = workers.stop_gracefully(Duration::from_secs(40)).await;
    if let Some(replicas) = replicas.as_mut() {
        let problems = replicas.stop_gracefully(Duration::from_secs(40)).await;
        shutdown.extend(problems.into_iter().map(|p| format!("inbox ingest {p}")));
    }
    eprintln!(
        "[faults] {:>5.1}s  workers stopped; checking the ledger",
        start.elapsed().as_secs_f64()
    );
    let not_ready = not_ready.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let unanswered = ledger.unanswered.load(std::sync::atomic::Ordering::Relaxed);
    let findings = verify::check(
        &app.pool,
        &ledger.snapshot(),
        &faults,
        &not_ready,
        unanswered,
    )
    .await?;
    let received = events::collect(&tap).await?;
    let event_findings = match opts.citus {
        true => EventFindings::default(),
        false => events::check(&app.pool, &received, unpublished).await?,
    };
    let _ = tap.delete().await;
    let totals = report::Totals::of(&ledger, &faults, start.elapsed());
    report::print(&totals, &findings, settled.as_ref().err(), &shutdown);
    match opts.citus {
        true => println!("  events                   not written on Citus (not checked)"),
        false => report::print_events(&event_findings),
    }
    if let Some(formed) = &cluster_formed {
        report::print_cluster(formed, &node_faults, &ledger.unavailable_at());
    }
    // Ingest and its sandbox go before the nodes they are connected to.
    drop(app);
    drop(cluster);
    drop(citus);
    let passed = findings.passed()
        && event_findings.passed()
        && settled.is_ok()
        && shutdown.is_empty()
        && totals.refused == 0
        && totals.fault_errors.is_empty()
        && node_faults.iter().all(|f| f.error.is_none());
    // The workers' logs are for a run that failed; a passing run leaves
    // nothing behind.
    let logs = workers.log_dir().to_path_buf();
    if passed {
        let _ = std::fs::remove_dir_all(&logs);
    } else {
        eprintln!("[faults] the workers' logs are kept in {}", logs.display());
    }
    Ok(passed)
}

/// An organization with the object type `item` the producers write.
async fn item_org(app: &objectsync_testkit::TestApp) -> objectsync_testkit::Org {
    let org = app.create_org(true).await;
    app.define_type(
        &org,
        "item",
        &json!({"label": "Items", "attributes": [
            {"key": "name", "label": "Name", "type": "text"},
            {"key": "seq", "label": "Sequence", "type": "number"},
            {"key": "note", "label": "Note", "type": "text"}
        ]}),
    )
    .await;
    org
}

/// The cluster as ingest left it after declaring the queues of `prefix`
/// (each must have a replica on every node), printed.
fn survey(
    cluster: Option<&(cluster::Cluster, Duration)>,
    prefix: &str,
) -> Result<Option<cluster::Formed>, String> {
    let Some((c, took)) = cluster else {
        return Ok(None);
    };
    let formed =
        tokio::task::block_in_place(|| cluster::Formed::survey(c, *took, prefix, CLUSTER_NODES))?;
    eprintln!("[faults] {}", formed.describe());
    Ok(Some(formed))
}

/// Starts the `cluster` mode's nodes and joins them: the cluster, and how
/// long that took.
async fn start_cluster() -> Result<(cluster::Cluster, Duration), String> {
    eprintln!("[faults] starting {CLUSTER_NODES} RabbitMQ nodes of its own, then clustering them");
    let began = Instant::now();
    let cluster = tokio::task::spawn_blocking(|| cluster::Cluster::start(CLUSTER_NODES))
        .await
        .map_err(|e| format!("starting the cluster: {e}"))??;
    Ok((cluster, began.elapsed()))
}

/// The `citus` mode's coordinator: the one `OBJECTSYNC_TEST_CITUS` names
/// when set (run under `objectsync-citus`, beside the tests, whose
/// migrated template it reuses), else a coordinator and two workers of its
/// own, returned so that they stop when the run ends.
async fn citus_cluster() -> Result<(Option<CitusCluster>, String), String> {
    if let Some(url) = std::env::var(CITUS_ENV).ok().filter(|v| !v.is_empty()) {
        eprintln!("[faults] on the Citus coordinator {CITUS_ENV} names");
        return Ok((None, url));
    }
    let cluster = start_citus().await?;
    let url = cluster.url("postgres");
    Ok((Some(cluster), url))
}

/// Starts a Citus coordinator and two workers.
async fn start_citus() -> Result<CitusCluster, String> {
    eprintln!("[faults] starting a Citus coordinator and two workers of its own");
    let began = Instant::now();
    let cluster = tokio::task::spawn_blocking(|| CitusCluster::start(2))
        .await
        .map_err(|e| format!("starting the Citus cluster: {e}"))?;
    eprintln!(
        "[faults] Citus coordinator on port {} (workers {:?}) in {:.1?}",
        cluster.port(),
        cluster.worker_ports(),
        began.elapsed()
    );
    Ok(cluster)
}

/// Runs futures side by side on this task.
async fn futures_join<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}
