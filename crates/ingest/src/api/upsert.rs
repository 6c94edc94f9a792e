//! `POST /v3/objects/{object_type}/batch/upsert` and `.../batch/delete`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use objectsync_model::{DeleteBatch, Job, UpsertBatch};
use serde_json::{Value, json};

use super::body_bytes;
use crate::auth::Org;
use crate::error::ApiResult;
use crate::state::AppState;

/// Checks the batch, makes it durable and answers `202 {processId}`.
pub(super) async fn upsert(
    org: Org,
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body_bytes(body)?;
    let batch = UpsertBatch::parse(&body)?;
    submit(&state, org, &object_type, Job::Upsert(batch)).await
}

/// Checks the list of identifiers and queues their deletion: `202 {processId}`.
pub(super) async fn delete(
    org: Org,
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body_bytes(body)?;
    let batch = DeleteBatch::parse(&body)?;
    submit(&state, org, &object_type, Job::Delete(batch)).await
}

async fn submit(
    state: &AppState,
    org: Org,
    object_type: &str,
    job: Job,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let process_id = state.publisher.submit(org.id, object_type, job).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "processId": process_id,
            "message": "Batch object records are being processed",
        })),
    ))
}
