//! One span per request, carrying a request id (the client's `x-request-id`
//! when it sends a usable one, a new one otherwise, echoed in the answer)
//! and, as soon as they are known, the organization, object type and
//! process id. The request id and process id travel on to the worker in the
//! message headers, and the worker opens its span per delivery with the same
//! fields, so one batch can be followed through the logs of ingest and of
//! every worker (`grep '"process_id":93'` over the JSON logs).

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use objectsync_model::{OrgId, ProcessId};
use tracing::Instrument;

const HEADER: &str = "x-request-id";

/// A request id from the client (an HTTP header, or an inbox message's
/// `x-request-id`) is kept when it is short printable ASCII.
pub(crate) fn usable(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// A new request id, for a request that came without a usable one.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The middleware: opens the request's span, makes sure the request carries
/// an id, and echoes it.
pub(crate) async fn request_span(mut req: Request, next: Next) -> Response {
    let id = match req.headers().get(HEADER) {
        Some(v) if usable(v.as_bytes()) => v.clone(),
        _ => HeaderValue::from_str(&new_id()).unwrap_or(HeaderValue::from_static("unknown")),
    };
    req.headers_mut().insert(HEADER, id.clone());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or(""),
        method = %req.method(),
        route,
        org_id = tracing::field::Empty,
        object_type = tracing::field::Empty,
        process_id = tracing::field::Empty,
    );
    let mut response = next.run(req).instrument(span).await;
    response.headers_mut().insert(HEADER, id);
    response
}

/// The request id of a request that went through [`request_span`].
pub(crate) fn request_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(HEADER).and_then(|v| v.to_str().ok())
}

/// Records the organization on the request's span.
pub(crate) fn record_org(org: OrgId) {
    tracing::Span::current().record("org_id", org.get());
}

/// Records the object type on the request's span.
pub(crate) fn record_object_type(name: &str) {
    tracing::Span::current().record("object_type", name);
}

/// Records the process on the request's span.
pub(crate) fn record_process(id: ProcessId) {
    tracing::Span::current().record("process_id", id.get());
}
