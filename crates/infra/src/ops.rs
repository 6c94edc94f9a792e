//! `/healthz`, `/readyz` and `/metrics`, served by both binaries.
//!
//! `/healthz` says the process is up. `/readyz` says it can do its job right
//! now: the database answers and the broker connection is (or can be made)
//! live; a load balancer or orchestrator takes the instance out while not.

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
    let (db, mq) = probes.check().await;
    let word = |up: bool| if up { "up" } else { "down" };
    let status = if db && mq {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if db && mq { "ready" } else { "not_ready" },
        "database": word(db),
        "broker": word(mq),
    });
    (status, Json(body))
}
