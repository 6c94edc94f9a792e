//! `/healthz`, `/readyz` and `/metrics`, served by both binaries.
//!
//! `/healthz` says the process is up. `/readyz` says it can do its job right
//! now: the database answers and the broker connection is (or can be made)
//! live; a load balancer or orchestrator takes the instance out while not.
//! On ingest it also says, for information, how many workers the broker
//! sees consuming (see [`Probes::workers`]) and, when a read standby is
//! configured, whether it answers and keeps up: a standby that does not is
//! no reason to take ingest out, since its reads go to the primary
//! meanwhile (see `db::ReadPool`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use deadpool_postgres::Pool;
use serde_json::{Value, json};

use crate::amqp::Broker;

/// What `/readyz` probes.
#[derive(Clone)]
pub struct Probes {
    pub pool: Pool,
    pub broker: Arc<Broker>,
    /// Whether `/readyz` reports the workers the broker sees consuming
    /// (`"workers": {"consumers": N}`). Ingest does: it has no other way to
    /// know them. A worker does not: it would mostly count itself.
    pub report_workers: bool,
    /// The lag-tolerant reads, whose standby (if any) `/readyz` reports
    /// as `"read_standby": "up" | "down" | "behind"`, for information.
    pub reads: Option<crate::db::ReadPool>,
}

impl Probes {
    /// Probes both dependencies, each within two seconds.
    pub async fn check(&self) -> (bool, bool) {
        let limit = Duration::from_secs(2);
        let db = tokio::time::timeout(limit, crate::db::ping(&self.pool));
        let mq = tokio::time::timeout(limit, self.broker.connection());
        let (db, mq) = tokio::join!(db, mq);
        (matches!(db, Ok(true)), matches!(mq, Ok(Ok(_))))
    }

    /// Workers consuming batches, as the broker counts them; `None` when the
    /// broker cannot say within a second.
    ///
    /// Every worker consumes every batch queue, each with one consumer on
    /// its one batch channel, so the sum of the consumers of all the batch
    /// queues would be workers × queues. The consumers of one of them, the
    /// first partition (`{prefix}.batches.p0`), are the workers. A worker
    /// that is reconnecting to the broker is not counted until it consumes
    /// again.
    ///
    /// One passive declare, on a channel of its own opened on the existing
    /// connection and closed after, so `/readyz` stays fast.
    pub async fn workers(&self) -> Option<u32> {
        let queue = self.broker.topology().partitions.first()?.clone();
        let count = async {
            let conn = self.broker.connection().await?;
            let channel = conn.create_channel().await?;
            let declared = crate::amqp::inspect(&channel, &queue).await;
            // A failed passive declare has closed the channel already.
            if declared.is_ok() {
                let _ = channel.close(200, "OK".into()).await;
            }
            declared.map(|q| q.consumer_count())
        };
        match tokio::time::timeout(Duration::from_secs(1), count).await {
            Ok(Ok(n)) => Some(n),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, queue, "could not count the workers");
                None
            }
            Err(_) => None,
        }
    }
}

/// The three routes, ready to be merged into a service's router.
pub fn router(probes: Probes) -> Router {
    crate::metrics::install();
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

async fn metrics() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}

async fn readyz(State(probes): State<Probes>) -> (StatusCode, Json<Value>) {
    let workers = async {
        if probes.report_workers {
            Some(probes.workers().await)
        } else {
            None
        }
    };
    let standby = async {
        let reads = probes.reads.as_ref()?;
        let limit = Duration::from_secs(2);
        match tokio::time::timeout(limit, reads.standby_state()).await {
            Ok(state) => state,
            Err(_) => Some(crate::db::StandbyState::Down),
        }
    };
    let ((db, mq), workers, standby) = tokio::join!(probes.check(), workers, standby);
    let word = |up: bool| if up { "up" } else { "down" };
    let status = if db && mq {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if db && mq { "ready" } else { "not_ready" },
        "database": word(db),
        "broker": word(mq),
    });
    // Information only: no worker consuming does not make ingest unready
    // (it still accepts batches; they wait in the queues).
    if let Some(workers) = workers {
        body["workers"] = json!({ "consumers": workers });
    }
    // Information only too: while the standby is down or lags too far
    // behind, its reads go to the primary.
    if let Some(state) = standby {
        body["read_standby"] = json!(state.word());
    }
    (status, Json(body))
}
