//! `POST /v3/objects/{object_type}/batch/upsert` and `.../batch/delete`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use objectsync_model::{DeleteBatch, Job};
use serde_json::{Value, json};

use super::body_bytes;
use crate::auth::Org;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Checks the batch, makes it durable and answers `202 {processId}`.
pub(super) async fn upsert(
    org: Org,
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body_bytes(body)?;
    let key = idempotency_key(&headers)?;
    let process_id = state
        .publisher
        .submit_upsert_body(org.id, &object_type, &body, key)
        .await?;
    Ok(accepted(process_id))
}

/// Checks the list of identifiers and queues their deletion: `202 {processId}`.
pub(super) async fn delete(
    org: Org,
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body_bytes(body)?;
    let batch = DeleteBatch::parse(&body)?;
    let key = idempotency_key(&headers)?;
    let process_id = state
        .publisher
        .submit(org.id, &object_type, Job::Delete(batch), key)
        .await?;
    Ok(accepted(process_id))
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::invalid("Idempotency-Key must be printable ASCII")),
    }
}

fn accepted(process_id: i64) -> (StatusCode, Json<Value>) {
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "processId": process_id,
            "message": "Batch object records are being processed",
        })),
    )
}
