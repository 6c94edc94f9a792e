//! Building and running the ingest service: migrations, broker topology,
//! the router, and a listener (port 0 in tests).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use backon::{ExponentialBuilder, Retryable};
use objectsync_console::Console;
use objectsync_infra::db::Sessions;
use objectsync_infra::ops::{self, Probes};
use objectsync_infra::settings::ExposeSecret;
use objectsync_infra::token_guard::TokenGuard;
use objectsync_infra::{Broker, Settings, amqp, db};
use objectsync_model::ApiCode;
use objectsync_model::limits::MAX_BODY_BYTES;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::console::IngestActions;
use crate::error::ApiError;
use crate::publisher::Publisher;
use crate::state::AppState;

pub use objectsync_infra::StartupError;

/// A built, bound, not yet running ingest service.
pub struct Application {
    listener: TcpListener,
    limits: crate::serve::Limits,
    queues: objectsync_console::Queues,
    router: Router,
    publisher: Arc<Publisher>,
    broker: Arc<Broker>,
    /// The inbox's consumer, unless `inbox.consume` is off.
    inbox: Option<Arc<crate::inbox::Inbox>>,
    /// The sessions of the gauges (monitors' timeouts); requests have
    /// their own pool in the router's state.
    monitors: deadpool_postgres::Pool,
    /// The lag-tolerant reads, whose standby's lag is watched while ingest
    /// runs.
    reads: db::ReadPool,
    port: u16,
}

/// Runs pending migrations, retrying while the database is not up yet (as
/// when all services start together), until `cancel` fires. A schema
/// already current is only read, so ingest connected as the app role starts
/// without the schema owner's rights; see [`schema_ready`].
async fn migrate_when_up(url: &str, cancel: &CancellationToken) -> Result<(), db::DbError> {
    let stop = cancel.clone();
    (|| async {
        if cancel.is_cancelled() {
            return Err(db::DbError::Cancelled);
        }
        db::migrate_if_behind(url).await.map(drop)
    })
    .retry(MIGRATE_BACKOFF)
    .sleep(move |pause| {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    })
    .when(|e| {
        !e.is_configuration()
            && matches!(e, db::DbError::Postgres(e)
                if objectsync_store::classify(e) == objectsync_store::ErrorKind::Transient)
    })
    .notify(|e, pause| {
        let error = match e {
            db::DbError::Postgres(e) => objectsync_store::describe(e),
            other => other.to_string(),
        };
        tracing::warn!(%error, retry_in = ?pause, "database not reachable yet; retrying");
    })
    .await
}

/// Brings the schema up to date ([`migrate_when_up`]), or, when migrations
/// are pending and this user may not apply them (the app role), waits until
/// `objectsync-ingest migrate`, run as the schema's owner, has: as workers
/// do, so that the services may start before the migrations in any order.
async fn schema_ready(
    url: &str,
    pool: &deadpool_postgres::Pool,
    cancel: &CancellationToken,
) -> Result<(), db::DbError> {
    match migrate_when_up(url, cancel).await {
        Err(e @ db::DbError::NotSchemaOwner { .. }) => {
            tracing::warn!(error = %e, "waiting for the migrations");
            db::wait_for_schema(pool, cancel).await
        }
        other => other,
    }
}

/// The pauses between attempts of [`migrate_when_up`]: from 250 ms,
/// doubling, up to 5 s, for as long as it takes.
const MIGRATE_BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(250))
    .with_max_delay(Duration::from_secs(5))
    .without_max_times();

/// Planner settings of ingest's sessions.
///
/// Every statement ingest runs reaches its rows through an index: a key, a
/// key range, or the first rows of an index in its order (the pages of
/// `GET …/records` and `GET /v3/processes`). Without statistics, or with
/// statistics from when the table was small (PostgreSQL's own autovacuum
/// refreshes them late after a bulk load, and not at all when it is off),
/// the planner guesses that an organization's rows are a handful and reads
/// and sorts the whole table instead: at 3,000,000 records the bench
/// measured page 1 at 0.6 s (p99 1.9 s) instead of 5 ms. Sequential and bitmap scans are
/// therefore priced out for ingest, so the index walk is chosen whatever
/// the statistics say. (A table without a usable index is still scanned;
/// ingest has none on a growing table.)
pub const PLANNER_OPTIONS: &str = "-c enable_seqscan=off -c enable_bitmapscan=off";

impl Application {
    #[tracing::instrument(skip_all, name = "ingest_start")]
    pub async fn build(
        settings: &Settings,
        cancel: &CancellationToken,
    ) -> Result<Self, StartupError> {
        // Broker URLs that cannot be used stop the start before any wait.
        let broker = Arc::new(Broker::new(&settings.amqp, "objectsync-ingest")?);
        let pool = db::pool_for(
            &settings.database,
            Sessions::Requests,
            Some(PLANNER_OPTIONS),
        )?;
        schema_ready(settings.database.url.expose_secret(), &pool, cancel).await?;
        let reads = db::read_pool(
            &settings.database,
            pool.clone(),
            Sessions::Requests,
            Some(PLANNER_OPTIONS),
        )?;
        let monitors = db::pool_for(
            &settings.database,
            Sessions::Monitors,
            Some(PLANNER_OPTIONS),
        )?;
        if let Err(e) = broker.connection().await {
            // Keep serving: the publisher reconnects on demand and /readyz
            // says the broker is down until then.
            tracing::warn!(
                error = %amqp::describe(&e),
                "RabbitMQ not reachable at start; batches get 503 until it is"
            );
        }
        let publisher = Arc::new(Publisher::new(pool.clone(), broker.clone()));
        let admin_token: Option<Arc<str>> = settings
            .admin
            .token
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .filter(|t| !t.is_empty())
            .map(Arc::from);
        let token_guard = Arc::<TokenGuard>::default();
        let console = Console::new(
            reads.clone(),
            admin_token.clone(),
            Duration::from_secs(settings.worker.heartbeat_secs),
            token_guard.clone(),
            Arc::new(IngestActions {
                pool: pool.clone(),
                publisher: publisher.clone(),
                allow_private_webhooks: settings.webhooks.allow_private_addresses,
            }),
        )
        .with_secure_cookie(settings.console.secure_cookie);
        let queues = console.queues.clone();
        let state = AppState {
            pool: pool.clone(),
            reads: reads.clone(),
            publisher: publisher.clone(),
            admin_token,
            limits: settings.limits,
            token_guard,
            allow_private_webhooks: settings.webhooks.allow_private_addresses,
            key_use: Arc::default(),
        };
        let inbox = settings.inbox.consume.then(|| {
            Arc::new(crate::inbox::Inbox {
                state: state.clone(),
                broker: broker.clone(),
                settings: settings.inbox,
            })
        });
        let router = router(
            state,
            console,
            Probes {
                pool: pool.clone(),
                broker: broker.clone(),
                report_workers: true,
                reads: Some(reads.clone()),
            },
        );
        let listener = TcpListener::bind(settings.http_addr()).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            limits: crate::serve::Limits::of(&settings.http),
            router,
            publisher,
            broker,
            inbox,
            monitors,
            reads,
            port,
            queues,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves (and consumes the inbox) until `cancel` fires, then stops
    /// accepting and lets in-flight requests and inbox messages finish.
    pub async fn run_until(self, cancel: CancellationToken) -> std::io::Result<()> {
        tracing::info!(port = self.port, "ingest listening");
        tokio::spawn(crate::gauges::run(
            self.monitors.clone(),
            self.broker.clone(),
            self.queues.clone(),
            cancel.clone(),
        ));
        tokio::spawn(self.reads.watch_lag(cancel.clone()));
        let inbox = self
            .inbox
            .map(|inbox| tokio::spawn(crate::inbox::run(inbox, cancel.clone())));
        crate::serve::serve(self.listener, self.router, self.limits, cancel).await;
        if let Some(inbox) = inbox {
            // Its messages in hand finish (or go back to the queue) before
            // the publisher and the connection close.
            let _ = inbox.await;
        }
        self.publisher.close().await;
        self.broker.close().await;
        tracing::info!("ingest stopped");
        Ok(())
    }
}

/// The whole HTTP surface of ingest, the console's pages included.
pub fn router(state: AppState, console: Console, probes: Probes) -> Router {
    Router::new()
        .merge(
            crate::api::router()
                .merge(crate::openapi::router())
                .route_layer(axum::middleware::from_fn(crate::limits::headers)),
        )
        .merge(crate::admin::router(state.clone()))
        .merge(objectsync_console::router(console))
        .route_layer(axum::middleware::from_fn(crate::track::track))
        .route_layer(axum::middleware::from_fn(crate::trace::request_span))
        .fallback(|| async { ApiError::not_found("No such endpoint").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ApiCode::MethodNotAllowed,
                "Method not allowed on this endpoint",
            )
            .into_response()
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .merge(ops::router(probes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrating_retries_while_the_database_is_away_until_cancelled() {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            stop.cancel();
        });
        // Nothing listens on port 1: connection refused, a transient error.
        let e = migrate_when_up("postgres://postgres@127.0.0.1:1/objectsync", &cancel)
            .await
            .unwrap_err();
        assert!(matches!(e, db::DbError::Cancelled), "{e}");
    }
}
