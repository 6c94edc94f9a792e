//! The admin HTTP API. Disabled (404) unless an admin token is configured;
//! every call must carry it in the `admin-token` header.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use objectsync_model::{ApiCode, DefinitionInput, OrgId, ProcessId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::fail::{self, FailedProcess};
use super::service::{self, AdminError, CreatedKey, CreatedOrg, Definition, LimitsOut};
use crate::api::{ErrorBody, Params, PathParts, json_body};
use crate::auth::secrets_match;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(m) => Self::not_found(m),
            AdminError::Conflict(m) => Self::new(ApiCode::Conflict, m),
            AdminError::Invalid(f) => Self::invalid(f.to_string()),
            AdminError::Store(e) => e.into(),
        }
    }
}

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/organizations", post(create_org))
        .route("/admin/organizations/{org_id}/api-keys", post(create_key))
        .route("/admin/organizations/{org_id}/objects", get(list_objects))
        .route(
            "/admin/organizations/{org_id}/objects/{object_type}",
            put(put_object),
        )
        .route(
            "/admin/organizations/{org_id}/limits",
            get(get_limits).put(put_limits),
        )
        .route("/admin/processes/stale", get(stale_processes))
        .route(
            "/admin/organizations/{org_id}/processes/{process_id}/fail",
            post(fail_process),
        )
        .route_layer(middleware::from_fn_with_state(state, require_token))
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.admin_token.as_deref() else {
        return ApiError::not_found("The admin API is disabled: set OBJECTSYNC__ADMIN__TOKEN")
            .into_response();
    };
    let given = req
        .headers()
        .get("admin-token")
        .and_then(|v| v.to_str().ok());
    match given {
        Some(given) if secrets_match(given, expected) => next.run(req).await,
        _ => ApiError::unauthorized("missing or wrong 'admin-token' header").into_response(),
    }
}

fn org_id(raw: &str) -> ApiResult<OrgId> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(OrgId)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "organization id '{raw}' must be a positive integer"
            ))
        })
}

/// A new organization.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct NewOrg {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    name: String,
    /// Default true.
    custom_objects_enabled: Option<bool>,
}

/// A definition to store.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct DefinitionIn {
    #[schema(min_length = 1, max_length = 255)]
    label: String,
    /// The first is the primary attribute and must be of type text.
    #[schema(min_items = 1, max_items = 500)]
    attributes: Vec<objectsync_model::AttributeDef>,
    /// Left out keeps the stored associations; a list replaces them.
    #[schema(max_items = 10)]
    associations: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/admin/organizations",
    tag = "admin",
    request_body(content = NewOrg, content_type = "application/json"),
    responses(
        (status = 201, body = CreatedOrg),
        (status = 401, body = ErrorBody),
        (status = 415, body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
pub(crate) async fn create_org(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<CreatedOrg>)> {
    let body = json_body(&headers, body)?;
    let name = match body.get("name") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::invalid("name: must be a string")),
        None => {
            return Err(ApiError::new(
                ApiCode::MissingParameter,
                "name: is required",
            ));
        }
    };
    let enabled = match body.get("custom_objects_enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid(
                "custom_objects_enabled: must be true or false",
            ));
        }
    };
    let mut client = state.pool.get().await?;
    let org = service::create_org(&mut client, name, enabled).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

#[utoipa::path(
    post,
    path = "/admin/organizations/{org_id}/api-keys",
    tag = "admin",
    params(("org_id" = i64, Path, minimum = 1)),
    responses(
        (status = 201, body = CreatedKey),
        (status = 404, body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    PathParts(raw): PathParts<String>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let org = org_id(&raw)?;
    let client = state.pool.get().await?;
    let key = service::create_key(&client, org).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(
    put,
    path = "/admin/organizations/{org_id}/objects/{object_type}",
    tag = "admin",
    params(
        ("org_id" = i64, Path, minimum = 1),
        ("object_type" = String, Path, pattern = "^[a-z][a-z0-9_]{0,31}$"),
    ),
    request_body(content = DefinitionIn, content_type = "application/json"),
    responses(
        (status = 200, description = "The stored definition", body = Definition),
        (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
pub(crate) async fn put_object(
    State(state): State<AppState>,
    PathParts((raw, object_type)): PathParts<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Definition>> {
    let org = org_id(&raw)?;
    let body = json_body(&headers, body)?;
    let input = DefinitionInput::from_json(&body).map_err(|e| ApiError::invalid(e.to_string()))?;
    let mut client = state.pool.get().await?;
    let stored = service::put_object_type(&mut client, org, &object_type, input).await?;
    Ok(Json(Definition::from(&stored)))
}

#[utoipa::path(
    get,
    path = "/admin/organizations/{org_id}/objects",
    tag = "admin",
    params(("org_id" = i64, Path, minimum = 1)),
    responses(
        (status = 200, body = Vec<Definition>),
        (status = 404, body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
pub(crate) async fn list_objects(
    State(state): State<AppState>,
    PathParts(raw): PathParts<String>,
) -> ApiResult<Json<Vec<Definition>>> {
    let org = org_id(&raw)?;
    let client = state.pool.get().await?;
    let types = service::list_object_types(&client, org).await?;
    Ok(Json(types.iter().map(Definition::from).collect()))
}

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
                created_at: crate::api::timestamp(p.created_at),
                last_delivery_at: p.last_delivery_at.map(crate::api::timestamp),
                last_error: p.last_error,
            })
            .collect(),
    ))
}

/// Why an operator fails a process.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct FailIn {
    /// Why; the client reads "failed by an operator: " and this in the
    /// process's `info.error`.
    #[schema(min_length = 1, max_length = 1000)]
    reason: String,
    /// Who fails it, kept with the process; default "admin API".
    #[schema(min_length = 1, max_length = 64)]
    operator: Option<String>,
}

/// A text field of a JSON body: `Ok(None)` when absent or null.
fn text_field<'a>(body: &'a Value, name: &str) -> ApiResult<Option<&'a str>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!("{name}: must be a string"))),
    }
}

#[utoipa::path(
    post,
    path = "/admin/organizations/{org_id}/processes/{process_id}/fail",
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
    let body = json_body(&headers, body)?;
    let reason = text_field(&body, "reason")?
        .ok_or_else(|| ApiError::new(ApiCode::MissingParameter, "reason: is required"))?;
    let operator = text_field(&body, "operator")?.unwrap_or("admin API");
    let client = state.pool.get().await?;
    Ok(Json(
        fail::fail_process(&client, org, process, operator, reason).await?,
    ))
}

/// An organization's own limits; a field left out or `null` takes the
/// default.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct LimitsIn {
    /// Batch requests per second (0: no limit).
    #[schema(minimum = 0)]
    writes_per_second: Option<f64>,
    #[schema(minimum = 1)]
    writes_burst: Option<f64>,
    /// Read requests per second (0: no limit).
    #[schema(minimum = 0)]
    reads_per_second: Option<f64>,
    #[schema(minimum = 1)]
    reads_burst: Option<f64>,
    /// Open processes before new batches get 429 (0: no cap).
    #[schema(minimum = 0, maximum = 2_147_483_647)]
    max_open_processes: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/organizations/{org_id}/limits",
    tag = "admin",
    params(("org_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = LimitsOut)),
    security(("adminToken" = []))
)]
pub(crate) async fn get_limits(
    State(state): State<AppState>,
    PathParts(raw): PathParts<String>,
) -> ApiResult<Json<LimitsOut>> {
    let org = org_id(&raw)?;
    let client = state.pool.get().await?;
    Ok(Json(
        service::get_limits(&client, &state.limits, org).await?,
    ))
}

#[utoipa::path(
    put,
    path = "/admin/organizations/{org_id}/limits",
    tag = "admin",
    params(("org_id" = i64, Path, minimum = 1)),
    request_body(content = LimitsIn, content_type = "application/json"),
    responses((status = 200, body = LimitsOut), (status = 415, body = ErrorBody)),
    security(("adminToken" = []))
)]
/// Replaces an organization's limits; they apply to its next request.
pub(crate) async fn put_limits(
    State(state): State<AppState>,
    PathParts(raw): PathParts<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<LimitsOut>> {
    let org = org_id(&raw)?;
    let body = json_body(&headers, body)?;
    let own: objectsync_store::organizations::Limits =
        serde_json::from_value(body).map_err(|e| ApiError::invalid(format!("limits: {e}")))?;
    let client = state.pool.get().await?;
    Ok(Json(
        service::set_limits(&client, &state.limits, org, own).await?,
    ))
}
