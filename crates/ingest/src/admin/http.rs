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
use objectsync_infra::settings::LimitSettings;
use objectsync_infra::token_guard::{ClientAddr, secrets_match, wait_text};
use objectsync_model::{ApiCode, DefinitionInput};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::processes;
use super::service::{self, AdminError, CreatedKey, CreatedOrg, Definition, LimitsOut};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::web::{PathParts, json_body, org_id};

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
        .route("/admin/processes/stale", get(processes::stale_processes))
        .route(
            "/admin/organizations/{org_id}/processes/{process_id}/fail",
            post(processes::fail_process),
        )
        .route_layer(middleware::from_fn_with_state(state, require_token))
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.admin_token.as_deref() else {
        return ApiError::not_found("The admin API is disabled: set OBJECTSYNC__ADMIN__TOKEN")
            .into_response();
    };
    let client = ClientAddr::from_extensions(req.extensions());
    if let Err(throttled) = state.token_guard.admit(client) {
        let mut e = ApiError::new(ApiCode::TooManyRequests, wait_text(throttled));
        e.retry_after = Some(throttled.retry_after);
        return e.into_response();
    }
    let Some(given) = req.headers().get("admin-token") else {
        state.token_guard.right(client);
        return ApiError::unauthorized("missing 'admin-token' header").into_response();
    };
    if secrets_match(given.to_str().unwrap_or_default(), expected) {
        state.token_guard.right(client);
        return next.run(req).await;
    }
    state.token_guard.wrong(client, "admin API");
    ApiError::unauthorized("missing or wrong 'admin-token' header").into_response()
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
    operation_id = "createOrganization",
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
    operation_id = "createApiKey",
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
    operation_id = "putObjectType",
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
    operation_id = "listObjectTypes",
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

/// An organization's own limits; a field left out or `null` takes the
/// default.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct LimitsIn {
    /// Batch requests per second: 0 (no limit), or 0.001 to 1,000,000.
    #[schema(minimum = 0, maximum = 1_000_000)]
    writes_per_second: Option<f64>,
    /// Batch requests at once after a quiet spell: 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    writes_burst: Option<f64>,
    /// Read requests per second: 0 (no limit), or 0.001 to 1,000,000.
    #[schema(minimum = 0, maximum = 1_000_000)]
    reads_per_second: Option<f64>,
    /// Read requests at once: 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    reads_burst: Option<f64>,
    /// Open processes before new batches get 429 (0: no cap).
    #[schema(minimum = 0, maximum = 2_147_483_647)]
    max_open_processes: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/organizations/{org_id}/limits",
    operation_id = "getLimits",
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
    operation_id = "putLimits",
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
    if let Some((field, _)) = body
        .as_object()
        .and_then(|o| o.iter().find(|(_, v)| !(v.is_number() || v.is_null())))
    {
        return Err(ApiError::invalid(format!(
            "{field}: must be a number or null"
        )));
    }
    if let Some(cap) = body.get("max_open_processes").filter(|v| !v.is_null()) {
        let field = "max_open_processes";
        cap.as_f64()
            .filter(|f| f.fract() == 0.0)
            .map(|f| f as i64)
            .ok_or_else(|| ApiError::invalid(format!("{field}: must be a whole number")))
            .and_then(|n| {
                LimitSettings::check_max_open_processes(field, n)
                    .map_err(|e| ApiError::invalid(format!("{}: {}", e.field, e.expected)))
            })?;
    }
    let own: objectsync_store::organizations::Limits =
        serde_json::from_value(body).map_err(|e| ApiError::invalid(format!("limits: {e}")))?;
    let client = state.pool.get().await?;
    Ok(Json(
        service::set_limits(&client, &state.limits, org, own).await?,
    ))
}
