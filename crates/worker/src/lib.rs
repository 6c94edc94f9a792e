//! The worker: consumes batches from RabbitMQ and applies them to
//! PostgreSQL, set-based and exactly once in effect. Any number of workers
//! can run side by side.

pub mod apply;
mod consumer;
mod ctx;
mod dead;
pub mod error;
mod events;
mod gate;
mod giveway;
mod headers;
mod heartbeat;
mod lost;
mod monitor;
mod retention;
mod settle;
mod unreadable;
mod waits;
mod webhooks;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use objectsync_infra::db::Sessions;
use objectsync_infra::ops::{self, Probes};
use objectsync_infra::{Broker, Role, Settings, db, shutdown, telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::WorkerError;

pub use objectsync_infra::StartupError;

/// Planner settings of the worker's sessions.
///
/// A batch reaches `records` by key from arrays of 1,000 ids or ext_ids.
/// A generic plan cached while the table was small (a fresh install, before
/// autovacuum's first ANALYZE) scanned the whole table for every batch once
/// it was large — the bench saw 800 ms per batch instead of 2 — so plans are
/// made for each execution, with the actual arrays and the table's current
/// size. (The statements themselves avoid joins on `records`; see
/// `apply::upsert`.)
const PLANNER_OPTIONS: &str = "-c plan_cache_mode=force_custom_plan";

/// Settings of the sessions of the event relay and the webhook sender:
/// those of the worker's, and commits that do not wait for the WAL to
/// reach the disk. What such a commit records — an event published, a
/// delivery made or taken — is only ever lost in a database crash, and then
/// the event is published again, or the delivery made again, under the same
/// id, which consumers already expect (at least once); in exchange the
/// relay and the sender add no disk flush to the batches' commits.
const OUTBOX_OPTIONS: &str = "-c plan_cache_mode=force_custom_plan -c synchronous_commit=off";

/// A built, not yet running worker with its health endpoints bound.
pub struct Worker {
    ctx: Arc<ctx::Ctx>,
    listener: TcpListener,
    router: Router,
    port: u16,
}

impl Worker {
    #[tracing::instrument(skip_all, name = "worker_start")]
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        let pool = db::pool_for(&settings.database, Sessions::Apply, Some(PLANNER_OPTIONS))?;
        let monitors = db::pool_for(
            &settings.database,
            Sessions::Monitors,
            Some(PLANNER_OPTIONS),
        )?;
        let events_pool =
            db::pool_for(&settings.database, Sessions::Monitors, Some(OUTBOX_OPTIONS))?;
        let sweeper = db::pool_for(&settings.database, Sessions::Monitors, None)?;
        let broker = Arc::new(Broker::new(&settings.amqp, "objectsync-worker")?);
        let router = ops::router(Probes {
            pool: pool.clone(),
            broker: broker.clone(),
            report_workers: false,
            // Workers read and write the primary only.
            reads: None,
        });
        let listener = TcpListener::bind(settings.http_addr()).await?;
        let port = listener.local_addr()?.port();
        let ctx = Arc::new(ctx::Ctx {
            pool,
            monitors,
            broker,
            settings: settings.worker.clone(),
            sweeper,
            retention: settings.retention,
            republish: tokio::sync::Mutex::new(None),
            local: apply::Local::new(settings.worker.prefetch),
            engine: std::sync::OnceLock::new(),
            events_pool,
            events: settings.events.clone(),
            webhooks: settings.webhooks.clone(),
            events_ready: tokio::sync::Notify::new(),
            deliveries_ready: tokio::sync::Notify::new(),
        });
        Ok(Self {
            ctx,
            listener,
            router,
            port,
        })
    }

    /// The port of `/healthz` and `/readyz`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the schema, then consumes until `cancel` fires; in-flight
    /// batches are finished and acknowledged before it returns.
    pub async fn run_until(self, cancel: CancellationToken) -> Result<(), StartupError> {
        let http_stop = CancellationToken::new();
        let http = tokio::spawn(
            axum::serve(self.listener, self.router)
                .with_graceful_shutdown(http_stop.clone().cancelled_owned())
                .into_future(),
        );
        tracing::info!(port = self.port, "worker health endpoints listening");
        match db::wait_for_schema(&self.ctx.pool, &cancel).await {
            Ok(()) | Err(db::DbError::Cancelled) => {}
            Err(e) => return Err(e.into()),
        }
        if !cancel.is_cancelled() {
            let engine = db::engine(&self.ctx.pool).await?;
            tracing::info!(engine = ?engine, "database engine");
            let _ = self.ctx.engine.set(engine);
        }
        let tracker = tokio::spawn(dead::run(self.ctx.clone(), cancel.clone()));
        let monitor = tokio::spawn(monitor::run(self.ctx.clone(), cancel.clone()));
        let retention = tokio::spawn(retention::run(self.ctx.clone(), cancel.clone()));
        // Stopped only once in-flight batches are done, so that the row
        // shows them until the end (or if this future is dropped).
        let beats = CancellationToken::new();
        let stop_beats = beats.clone().drop_guard();
        let heartbeat = tokio::spawn(heartbeat::run(self.ctx.clone(), beats));
        // The relay stops after the batches, so that the events of the last
        // ones go out; the webhook sender with the consumer, its attempts in
        // flight finishing while the batches do.
        // On Citus no completion events are written (`migrate` dropped the
        // trigger that writes them; the outbox scans are cross-tenant), so
        // there is nothing to relay or send.
        let outbox = CancellationToken::new();
        let citus = self.ctx.engine.get() == Some(&objectsync_store::Engine::Citus);
        if citus {
            tracing::warn!(
                "database is Citus: completion events and webhooks are not written or sent"
            );
        }
        let relay = tokio::spawn({
            let (ctx, outbox) = (self.ctx.clone(), outbox.clone());
            async move {
                if !citus {
                    events::run(ctx, outbox).await;
                }
            }
        });
        let sender = tokio::spawn({
            let (ctx, cancel) = (self.ctx.clone(), cancel.clone());
            async move {
                if !citus {
                    webhooks::run(ctx, cancel).await;
                }
            }
        });
        consumer::run(self.ctx.clone(), cancel.clone()).await;
        drop(stop_beats);
        let _ = heartbeat.await;
        let _ = tracker.await;
        let _ = monitor.await;
        outbox.cancel();
        let _ = relay.await;
        let _ = sender.await;
        let _ = retention.await;
        self.ctx.broker.close().await;
        http_stop.cancel();
        let _ = http.await;
        tracing::info!("worker stopped");
        Ok(())
    }
}

/// The whole life of a worker process: settings (from `config` and the
/// environment), logging, then consuming until SIGTERM or SIGINT. Exits 0
/// after a graceful stop. Shared by `objectsync-worker` and by tools that
/// run workers as child processes.
pub async fn run_process(config: Option<&Path>) -> ExitCode {
    let settings = match Settings::load(Role::Worker, config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("objectsync-worker: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log.format);
    let cancel = CancellationToken::new();
    shutdown::cancel_on_signal(cancel.clone());
    let result = match Worker::build(&settings).await {
        Ok(worker) => worker.run_until(cancel).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "objectsync-worker failed");
            eprintln!("objectsync-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
