//! `POST /v3/objects/{object_type}/batch/upsert`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use objectsync_model::{Job, UpsertBatch};
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
    let process_id = state
        .publisher
        .submit(org.id, &object_type, Job::Upsert(batch))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "processId": process_id,
            "message": "Batch object records are being processed",
        })),
    ))
}
