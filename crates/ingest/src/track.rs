//! Request metrics: a count and a latency histogram per method, route
//! (the route pattern, not the URL, so ids do not explode the series) and
//! status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

pub(crate) async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("objectsync_http_requests_total", &labels).increment(1);
    metrics::histogram!("objectsync_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
