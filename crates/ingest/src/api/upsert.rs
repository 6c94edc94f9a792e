//! `POST /v3/objects/{object_type}/batch/upsert` and `.../batch/delete`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use objectsync_model::ProcessKind;
use serde_json::{Value, json};

use super::json_request;
use crate::auth::Org;
use crate::error::{ApiError, ApiResult};
use crate::publisher::Submission;
use crate::state::AppState;

/// Checks the batch, makes it durable and answers `202 {processId}`.
pub(super) async fn upsert(
    org: Org,
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    submit(
        org,
        &state,
        &object_type,
        ProcessKind::Upsert,
        &headers,
        body,
    )
    .await
}

/// Checks the list of identifiers and queues their deletion: `202 {processId}`.
pub(super) async fn delete(
    org: Org,
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    submit(
        org,
        &state,
        &object_type,
        ProcessKind::Delete,
        &headers,
        body,
    )
    .await
}

async fn submit(
    org: Org,
    state: &AppState,
    object_type: &str,
    kind: ProcessKind,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = json_request(headers, body)?;
    let process_id = state
        .publisher
        .submit(Submission {
            org_id: org.id,
            object_type,
            kind,
            body: &body,
            idempotency_key: idempotency_key(headers)?,
            request_id: headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        })
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
