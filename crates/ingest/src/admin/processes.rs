//! The admin API's process routes: the processes left open with no
//! delivery for a while, and failing one by hand.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use objectsync_model::{ApiCode, OrgId, ProcessId};
use serde::Serialize;
use utoipa::ToSchema;

use super::body::FailIn;
use super::fail::{self, FailedProcess};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::web::{Params, PathParts, json_request, org_id};

/// A process still open with no delivery for a while.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StaleProcess {
    pub(crate) org_id: OrgId,
    pub(crate) id: objectsync_model::ProcessId,
    pub(crate) name: String,
    pub(crate) status: String,
    pub(crate) object_type: String,
    pub(crate) deliveries: i32,
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    #[schema(format = DateTime)]
    pub(crate) last_delivery_at: Option<String>,
    pub(crate) last_error: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/processes/stale",
    operation_id = "listStaleProcesses",
    tag = "admin",
    params(
        ("older_than" = Option<i64>, Query, minimum = 0, maximum = 4_294_967_295i64,
         description = "Seconds without a delivery; default 600"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
    ),
    responses((status = 200, body = Vec<StaleProcess>)),
    security(("adminToken" = []))
)]
/// Open processes with no delivery for `older_than` seconds, oldest first.
pub(crate) async fn stale_processes(
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Json<Vec<StaleProcess>>> {
    let after = params.int(
        "older_than",
        Some(600),
        0,
        i64::from(u32::MAX),
        ApiCode::OutOfRange,
    )?;
    let limit = params.int("limit", Some(100), 1, 1000, ApiCode::OutOfRange)?;
    let client = state.pool.get().await?;
    let secs = std::time::Duration::from_secs(u64::try_from(after).unwrap_or(0));
    let stale = objectsync_store::liveness::list(&client, secs, limit).await?;
    Ok(Json(
        stale
            .into_iter()
            .map(|p| StaleProcess {
                org_id: p.org_id,
                id: p.id,
                name: p.name,
                status: p.status,
                object_type: p.object_type,
                deliveries: p.deliveries,
                created_at: crate::web::timestamp(p.created_at),
                last_delivery_at: p.last_delivery_at.map(crate::web::timestamp),
                last_error: p.last_error,
            })
            .collect(),
    ))
}

#[utoipa::path(
    post,
    path = "/admin/organizations/{org_id}/processes/{process_id}/fail",
    operation_id = "failProcess",
    tag = "admin",
    params(
        ("org_id" = i64, Path, minimum = 1),
        ("process_id" = i64, Path, minimum = 1),
    ),
    request_body(content = FailIn, content_type = "application/json"),
    responses(
        (status = 200, description = "The process is failed now", body = FailedProcess),
        (status = 404, description = "No such process of this organization", body = ErrorBody),
        (status = 409, description = "The process already ended; it is left as it is", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 415, body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
/// Fails an open process (`queued` or `in_process`): it ends `failed` with
/// the reason, who and when, applies nothing, and is never applied even if
/// its batch turns up later. Later batches of the organization that waited
/// for it go on.
pub(crate) async fn fail_process(
    State(state): State<AppState>,
    PathParts((raw_org, raw_process)): PathParts<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<FailedProcess>> {
    let org = org_id(&raw_org)?;
    let process = raw_process
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(ProcessId)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "process id '{raw_process}' must be a positive integer"
            ))
        })?;
    let bytes = json_request(&headers, body)?;
    let asked: FailIn = super::body::read(&bytes, ApiCode::MissingParameter)?;
    let operator = asked.operator.as_deref().unwrap_or("admin API");
    let reason = asked.reason.as_str();
    let client = state.pool.get().await?;
    Ok(Json(
        fail::fail_process(&client, org, process, operator, reason).await?,
    ))
}
