//! The public API under `/v3`, and the helpers its handlers share for
//! turning bodies and query strings into clear 4xx answers.

pub(crate) mod associated;
mod extract;
mod params;
pub(crate) mod processes;
pub(crate) mod records;
pub(crate) mod schema;
pub(crate) mod upsert;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use objectsync_model::ApiCode;
use objectsync_model::limits::MAX_BODY_BYTES;
use serde_json::Value;

pub(crate) use extract::PathParts;
pub use params::Params;
pub use schema::{Accepted, ErrorBody};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/objects/{object_type}/batch/upsert",
            post(upsert::upsert),
        )
        .route(
            "/v3/objects/{object_type}/batch/delete",
            post(upsert::delete),
        )
        .route("/v3/objects/{object_type}/records", get(records::list))
        .route(
            "/v3/objects/{object_type}/associated-records",
            get(associated::list),
        )
        .route("/v3/processes", get(processes::list))
        .route("/v3/processes/{process_id}", get(processes::get))
        .route("/v3/processes/{process_id}/errors", get(processes::errors))
        .route("/openapi.json", get(openapi))
}

/// `GET /openapi.json`: the document generated from the handlers and types
/// (see `crate::openapi`), built once.
async fn openapi() -> impl axum::response::IntoResponse {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(crate::openapi::json);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.as_str(),
    )
}

/// The raw body, or `413 payload_too_large` past 1 MiB.
pub fn body_bytes(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ApiCode::PayloadTooLarge,
                format!("The body must be at most {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::new(ApiCode::BadRequest, rejection.body_text())
        }
    })
}

/// Refuses, with `415`, a body the server cannot read as sent: a declared
/// media type other than JSON (`application/json`, or a `+json` type), or a
/// `Content-Encoding` other than `identity` (bodies are not decompressed).
/// A body without a content type is read as JSON, as curl sends it.
pub fn check_media_type(headers: &HeaderMap) -> ApiResult<()> {
    let unsupported = |m: String| ApiError::new(ApiCode::UnsupportedMediaType, m);
    for encoding in headers.get_all(header::CONTENT_ENCODING) {
        let text = encoding.to_str().unwrap_or("?");
        if text
            .split(',')
            .map(str::trim)
            .any(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
        {
            return Err(unsupported(format!(
                "Content-Encoding '{text}' is not supported; send the body uncompressed"
            )));
        }
    }
    if let Some(value) = headers.get(header::CONTENT_TYPE) {
        let text = value.to_str().unwrap_or("?");
        let essence = text
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let json = essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"));
        if !json {
            return Err(unsupported(format!(
                "Content-Type '{text}' is not supported; send application/json \
                 (with curl: -H 'content-type: application/json')"
            )));
        }
    }
    Ok(())
}

/// The raw body of a JSON request: `415` for another media type or an
/// encoding, `413` past 1 MiB.
pub fn json_request(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    check_media_type(headers)?;
    body_bytes(body)
}

/// The body parsed as a JSON object, or `415` / `413` / `400 bad_request`.
pub fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult<Value> {
    let bytes = json_request(headers, body)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::new(
            ApiCode::BadRequest,
            "the body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            ApiCode::BadRequest,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// RFC 3339 in UTC with milliseconds, the form every timestamp is given in.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
