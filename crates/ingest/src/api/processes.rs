//! `GET /v3/processes`, `GET /v3/processes/{id}` and its `/errors`.

use axum::Json;
use axum::extract::State;
use objectsync_model::report::ProcessInfo;
use objectsync_model::{ApiCode, ProcessId, ProcessKind, ProcessStatus};
use objectsync_store::processes::{self, Process};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Org;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::web::{Params, PathParts, timestamp};

/// One batch and its outcome.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProcessOut {
    pub(crate) id: ProcessId,
    pub(crate) name: ProcessKind,
    pub(crate) status: ProcessStatus,
    pub(crate) object_type: String,
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    #[schema(format = DateTime)]
    pub(crate) started_at: Option<String>,
    #[schema(format = DateTime)]
    pub(crate) completed_at: Option<String>,
    pub(crate) info: ProcessInfo,
}

impl From<Process> for ProcessOut {
    fn from(p: Process) -> Self {
        Self {
            info: p.info(),
            id: p.id,
            name: p.kind,
            status: p.status,
            object_type: p.object_type,
            created_at: timestamp(p.created_at),
            started_at: p.started_at.map(timestamp),
            completed_at: p.completed_at.map(timestamp),
        }
    }
}

/// A page of processes and how many there are.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProcessList {
    pub(crate) count: i64,
    pub(crate) processes: Vec<ProcessOut>,
}

/// A rejected record (or a refused link of one).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RejectionOut {
    /// The record's index in the request.
    pub(crate) index: i32,
    /// Its identifiers, as sent.
    #[schema(value_type = Object)]
    pub(crate) identifiers: Value,
    #[schema(example = "invalid_attribute_value")]
    pub(crate) code: String,
    pub(crate) message: String,
}

/// A page of a process's rejections, in record order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RejectionList {
    pub(crate) count: i64,
    pub(crate) errors: Vec<RejectionOut>,
}

fn process_id(raw: &str) -> ApiResult<ProcessId> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(ProcessId)
        .ok_or_else(|| {
            ApiError::invalid(format!("processId must be a positive integer, got '{raw}'"))
        })
}

fn not_found(id: ProcessId) -> ApiError {
    ApiError::not_found(format!("Process {id} not found"))
}

#[utoipa::path(
    get,
    path = "/v3/processes/{processId}",
    operation_id = "getProcess",
    tag = "processes",
    params(("processId" = i64, Path, minimum = 1, description = "As answered by the 202")),
    responses(
        (status = 200, body = ProcessOut),
        (status = 404, description = "Unknown, or another organization's", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub(crate) async fn get(
    org: Org,
    State(state): State<AppState>,
    PathParts(raw): PathParts<String>,
) -> ApiResult<Json<ProcessOut>> {
    let id = process_id(&raw)?;
    let client = state.pool.get().await?;
    processes::get(&client, org.id, id)
        .await?
        .map(|p| Json(p.into()))
        .ok_or_else(|| not_found(id))
}

#[utoipa::path(
    get,
    path = "/v3/processes",
    operation_id = "listProcesses",
    tag = "processes",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 50, description = "Default 10"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "Default 0. Costs a walk of the index over the processes skipped"),
        ("sort" = Option<super::records::SortOrder>, Query, description = "By creation; default desc"),
    ),
    responses((status = 200, body = ProcessList)),
    security(("apiKey" = []))
)]
pub(crate) async fn list(
    org: Org,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Json<ProcessList>> {
    let limit = params.int("limit", Some(10), 1, 50, ApiCode::OutOfRange)?;
    let offset = params.int("offset", Some(0), 0, i64::MAX, ApiCode::InvalidParameter)?;
    let order = params.sort()?;
    let client = state.pool.get().await?;
    let page = processes::page(&client, org.id, order, limit, offset).await?;
    let count = processes::count(&client, org.id).await?;
    Ok(Json(ProcessList {
        count,
        processes: page.into_iter().map(ProcessOut::from).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/v3/processes/{processId}/errors",
    operation_id = "listProcessErrors",
    tag = "processes",
    params(
        ("processId" = i64, Path, minimum = 1),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 50"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "Default 0"),
    ),
    responses(
        (status = 200, body = RejectionList),
        (status = 404, body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub(crate) async fn errors(
    org: Org,
    State(state): State<AppState>,
    PathParts(raw): PathParts<String>,
    params: Params,
) -> ApiResult<Json<RejectionList>> {
    let id = process_id(&raw)?;
    let limit = params.int("limit", Some(50), 1, 1000, ApiCode::OutOfRange)?;
    let offset = params.int("offset", Some(0), 0, i64::MAX, ApiCode::InvalidParameter)?;
    let client = state.pool.get().await?;
    if !processes::exists(&client, org.id, id).await? {
        return Err(not_found(id));
    }
    let (count, rows) = processes::rejections(&client, org.id, id, limit, offset).await?;
    Ok(Json(RejectionList {
        count,
        errors: rows
            .into_iter()
            .map(|r| RejectionOut {
                index: r.index,
                identifiers: r.identifiers,
                code: r.code,
                message: r.message,
            })
            .collect(),
    }))
}
