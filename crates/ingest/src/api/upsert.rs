//! `POST /v3/objects/{object_type}/batch/upsert` and `.../batch/delete`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use objectsync_model::{DeleteBatch, Job, UpsertBatch};
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
    let batch = UpsertBatch::parse(&body)?;
    submit(&state, org, &object_type, &headers, Job::Upsert(batch)).await
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
    submit(&state, org, &object_type, &headers, Job::Delete(batch)).await
}

async fn submit(
    state: &AppState,
    org: Org,
    object_type: &str,
    headers: &HeaderMap,
    job: Job,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::invalid("Idempotency-Key must be printable ASCII"))?,
        ),
    };
    let process_id = state
        .publisher
        .submit(org.id, object_type, job, key)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "processId": process_id,
            "message": "Batch object records are being processed",
        })),
    ))
}
