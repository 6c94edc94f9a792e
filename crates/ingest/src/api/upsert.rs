//! `POST /v3/objects/{object_type}/batch/upsert` and `.../batch/delete`.

use axum::Json;
use axum::http::StatusCode;
use objectsync_model::ProcessKind;

use super::extract::BatchRequest;
use super::schema::{Accepted, DeleteIn, UpsertIn};
use crate::error::ApiResult;
use crate::error::ErrorBody;

#[utoipa::path(
    post,
    path = "/v3/objects/{object_type}/batch/upsert",
    operation_id = "upsertRecords",
    tag = "batches",
    params(
        ("object_type" = String, Path, pattern = "^[a-z][a-z0-9_]{0,31}$"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
         description = "The same key with the same request within 24 h answers the first request's processId"),
    ),
    request_body(content = UpsertIn, content_type = "application/json"),
    responses(
        (status = 202, description = "Durable; poll the process", body = Accepted),
        (status = 404, description = "Unknown object type", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another request", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
/// Checks the batch, makes it durable and answers `202 {processId}`.
pub(crate) async fn upsert(req: BatchRequest) -> ApiResult<(StatusCode, Json<Accepted>)> {
    req.submit(ProcessKind::Upsert).await
}

#[utoipa::path(
    post,
    path = "/v3/objects/{object_type}/batch/delete",
    operation_id = "deleteRecords",
    tag = "batches",
    params(
        ("object_type" = String, Path, pattern = "^[a-z][a-z0-9_]{0,31}$"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$"),
    ),
    request_body(content = DeleteIn, content_type = "application/json"),
    responses(
        (status = 202, description = "Durable; poll the process", body = Accepted),
        (status = 404, description = "Unknown object type", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another request", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
/// Checks the list of identifiers and queues their deletion: `202 {processId}`.
pub(crate) async fn delete(req: BatchRequest) -> ApiResult<(StatusCode, Json<Accepted>)> {
    req.submit(ProcessKind::Delete).await
}
