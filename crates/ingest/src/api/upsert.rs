//! `POST /v3/objects/{object_type}/batch/upsert` and `.../batch/delete`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use objectsync_model::ProcessKind;

use super::json_request;
use super::schema::{Accepted, DeleteIn, ErrorBody, UpsertIn};
use crate::auth::Org;
use crate::error::{ApiError, ApiResult};
use crate::publisher::Submission;
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/v3/objects/{object_type}/batch/upsert",
    tag = "batches",
    params(
        ("object_type" = String, Path, pattern = "^[a-z][a-z0-9_]{0,31}$"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
         description = "The same key with the same request within 24 h answers the first request's processId"),
    ),
    request_body(content = UpsertIn, content_type = "application/json"),
    responses(
        (status = 202, description = "Durable; poll the process", body = Accepted),
        (status = 400, description = "Refused; nothing queued", body = ErrorBody),
        (status = 404, description = "Unknown object type", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another request", body = ErrorBody),
        (status = 503, description = "Database or broker unavailable; retry", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
/// Checks the batch, makes it durable and answers `202 {processId}`.
pub(crate) async fn upsert(
    org: Org,
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
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

#[utoipa::path(
    post,
    path = "/v3/objects/{object_type}/batch/delete",
    tag = "batches",
    params(
        ("object_type" = String, Path, pattern = "^[a-z][a-z0-9_]{0,31}$"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$"),
    ),
    request_body(content = DeleteIn, content_type = "application/json"),
    responses(
        (status = 202, description = "Durable; poll the process", body = Accepted),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
/// Checks the list of identifiers and queues their deletion: `202 {processId}`.
pub(crate) async fn delete(
    org: Org,
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
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
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    crate::trace::record_object_type(object_type);
    let body = json_request(headers, body)?;
    let process_id = state
        .publisher
        .submit(Submission {
            org_id: org.id,
            object_type,
            kind,
            body: &body,
            idempotency_key: idempotency_key(headers)?,
            request_id: crate::trace::request_id(headers),
        })
        .await?;
    crate::trace::record_process(process_id);
    Ok((StatusCode::ACCEPTED, Json(Accepted::new(process_id))))
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
