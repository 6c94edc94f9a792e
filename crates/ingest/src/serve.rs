//! Serving HTTP/1.1 connections with protection against slow clients:
//! a client has `http.header_timeout_ms` to send a request's headers (the
//! same clock closes a keep-alive connection left idle that long), and
//! `http.body_timeout_ms` from then to send its whole body (see
//! `crate::request_body`, which also sees that every request is answered
//! before its connection closes); at most `http.max_connections`
//! are served at once, and when that cap is reached a warning says so and
//! new connections wait in the listen queue until one closes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioTimer;
use hyper_util::service::TowerToHyperService;
use objectsync_infra::settings::HttpSettings;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The timeouts and cap of a server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn of(http: &HttpSettings) -> Self {
        Self {
            header_timeout: Duration::from_millis(http.header_timeout_ms.max(1)),
            body_timeout: Duration::from_millis(http.body_timeout_ms.max(1)),
            max_connections: http.max_connections.max(1),
        }
    }
}

/// Serves `router` on `listener` until `cancel` fires; then stops accepting,
/// lets in-flight requests finish (idle connections close at once), and
/// returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    cancel: CancellationToken,
) {
    let body_timeout = limits.body_timeout;
    let router = router.layer(axum::middleware::from_fn(move |req, next| {
        crate::request_body::guard(body_timeout, req, next)
    }));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let mut warned: Option<Instant> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection cap reached: new connections wait until one closes \
                         (http.max_connections)"
                    );
                    metrics::counter!("objectsync_http_connection_cap_reached_total").increment(1);
                    warned = Some(Instant::now());
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(move |req: Request<Incoming>| {
                    // The client's address, for what is throttled per address.
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    req
                })
                .map_err(|e: Infallible| match e {}),
        );
        let cancel = cancel.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            crate::linger::serve_connection(&http, stream, service, &cancel).await;
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}
