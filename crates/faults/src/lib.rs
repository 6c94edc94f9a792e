//! The fault suite behind `objectsync-faults`: drives sustained load through
//! the real HTTP API while workers are SIGKILLed and RabbitMQ and
//! PostgreSQL restart, then checks a ledger of every batch that got a `202`.
//!
//! It restarts the machine's services, so it runs alone (CI runs it after
//! the tests, never beside them). Ingest runs in this process (it is never
//! killed); workers are child processes.

mod chaos;
mod children;
mod events;
mod load;
mod report;
mod verify;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use objectsync_testkit::spawn_app_with;
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
    /// Ranges of 100 records each producer cycles through.
    pub ranges: usize,
    pub workers: usize,
    pub kill_every: Duration,
    pub restart_services: bool,
    pub broker_cmd: String,
    pub database_cmd: String,
    /// How long processes may take to end after the load stops.
    pub settle: Duration,
}

/// Runs the suite, prints its figures, and says whether every guarantee held.
pub async fn run(opts: &Options) -> Result<bool, String> {
    let app = spawn_app_with(0, |s| {
        s.database.pool_size = 16;
    })
    .await;
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
    // Bound before the first batch: it keeps every event through restarts.
    let tap = objectsync_testkit::events::EventTap::bind(&app.settings.amqp)
        .await
        .map_err(|e| format!("could not bind a queue to the events exchange: {e}"))?;
    let log_dir =
        std::env::temp_dir().join(format!("objectsync-faults-{}", app.settings.amqp.prefix));
    let mut workers = children::Workers::start(&app.settings, opts.workers, log_dir)
        .map_err(|e| format!("could not start workers: {e}"))?;
    eprintln!(
        "[faults] {} producers, {} workers, {:?} of load; worker logs in {}",
        opts.producers,
        opts.workers,
        opts.duration,
        workers.log_dir().display()
    );

    let ledger = Arc::new(load::Ledger::default());
    let start = Instant::now();
    let until = start + opts.duration;
    let progress = tokio::spawn(report::progress(ledger.clone(), app.pool.clone(), start));
    let not_ready = Arc::new(std::sync::Mutex::new(Vec::new()));
    let probe = tokio::spawn(report::probe_readiness(
        format!("{}/readyz", app.address),
        not_ready.clone(),
    ));
    let schedule = chaos::Schedule {
        kill_every: opts.kill_every,
        broker_at: opts.restart_services.then(|| opts.duration / 3),
        database_at: opts.restart_services.then(|| opts.duration * 2 / 3),
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
        async move { producer.run(until).await }
    });
    let (_, faults) = tokio::join!(
        futures_join(producers),
        chaos::run(&mut workers, &schedule, start, until)
    );
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
    let shutdown = workers.stop_gracefully(Duration::from_secs(40)).await;
    eprintln!(
        "[faults] {:>5.1}s  workers stopped; checking the ledger",
        start.elapsed().as_secs_f64()
    );
    let not_ready = not_ready.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let findings = verify::check(&app.pool, &ledger.snapshot(), &faults, &not_ready).await?;
    let received = events::collect(&tap).await?;
    let event_findings = events::check(&app.pool, &received, unpublished).await?;
    let _ = tap.delete().await;
    let totals = report::Totals {
        posts: ledger.posts.load(Ordering::Relaxed),
        unavailable: ledger.unavailable.load(Ordering::Relaxed),
        transport_errors: ledger.transport_errors.load(Ordering::Relaxed),
        refused: ledger.refused.load(Ordering::Relaxed),
        kills: faults
            .iter()
            .filter(|f| f.kind == chaos::Kind::WorkerKill)
            .count(),
        fault_errors: faults.iter().filter_map(|f| f.error.clone()).collect(),
        elapsed: start.elapsed(),
    };
    report::print(&totals, &findings, settled.as_ref().err(), &shutdown);
    report::print_events(&event_findings);
    Ok(findings.passed()
        && event_findings.passed()
        && settled.is_ok()
        && shutdown.is_empty()
        && totals.refused == 0
        && totals.fault_errors.is_empty())
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
