//! The public API under `/v3`, and the helpers its handlers share for
//! turning bodies and query strings into clear 4xx answers.

mod associated;
mod params;
mod processes;
mod records;
mod upsert;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::routing::{get, post};
use objectsync_model::ApiCode;
use objectsync_model::limits::MAX_BODY_BYTES;
use serde_json::Value;

pub use params::Params;

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

/// The OpenAPI 3 document of the public API (kept beside this file; a test
/// checks that it names every `/v3` route).
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
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

/// The body parsed as a JSON object, or `400 bad_request`.
pub fn json_body(body: Result<Bytes, BytesRejection>) -> ApiResult<Value> {
    let bytes = body_bytes(body)?;
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
