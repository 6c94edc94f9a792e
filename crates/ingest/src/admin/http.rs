//! The admin HTTP API. Disabled (404) unless an admin token is configured;
//! every call must carry it in the `admin-token` header.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use objectsync_infra::settings::LimitSettings;
use objectsync_infra::token_guard::{ClientAddr, secrets_match, wait_text};
use objectsync_model::{ApiCode, DefinitionInput, ObjectTypeName};

use super::body::{self, DefinitionIn, LimitsIn, NewOrg};
use super::service::{self, AdminError, CreatedKey, CreatedOrg, Definition, LimitsOut};
use super::{keys, processes, webhooks};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::web::{PathParts, json_request, org_id};

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
        .route(
            "/admin/organizations/{org_id}/api-keys",
            post(create_key).get(keys::list_keys),
        )
        .route(
            "/admin/organizations/{org_id}/api-keys/{key_id}",
            delete(keys::revoke_key),
        )
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
        .route(
            "/admin/organizations/{org_id}/webhooks",
            post(webhooks::create_webhook).get(webhooks::list_webhooks),
        )
        .route(
            "/admin/organizations/{org_id}/webhooks/{webhook_id}",
            delete(webhooks::delete_webhook),
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

#[utoipa::path(
    post,
    path = "/admin/organizations",
    operation_id = "createOrganization",
    tag = "admin",
    request_body(content = NewOrg, content_type = "application/json"),
    responses(
        (status = 201, body = CreatedOrg),
        (status = 401, body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 415, body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
pub(crate) async fn create_org(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<CreatedOrg>)> {
    let bytes = json_request(&headers, body)?;
    let org: NewOrg = body::read(&bytes, ApiCode::MissingParameter)?;
    let enabled = org.custom_objects_enabled.unwrap_or(true);
    let mut client = state.pool.get().await?;
    let org = service::create_org(&mut client, &org.name, enabled).await?;
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
        ("object_type" = ObjectTypeName, Path),
    ),
    request_body(content = DefinitionIn, content_type = "application/json"),
    responses(
        (status = 200, description = "The stored definition", body = Definition),
        (status = 404, body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
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
    let bytes = json_request(&headers, body)?;
    // The type refuses unknown and repeated keys, naming them; then what
    // needs more than a type (the primary attribute, keys defined twice,
    // options, an array where an object belongs) is checked on the body.
    let _: DefinitionIn = body::read(&bytes, ApiCode::InvalidParameter)?;
    let input = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(e.to_string()))
        .and_then(|v| {
            DefinitionInput::from_json(&v).map_err(|e| ApiError::invalid(e.to_string()))
        })?;
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
    responses(
        (status = 200, body = LimitsOut),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 415, body = ErrorBody),
    ),
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
    let bytes = json_request(&headers, body)?;
    let own: LimitsIn = body::read(&bytes, ApiCode::InvalidParameter)?;
    let field = "max_open_processes";
    let cap = own
        .max_open_processes
        .map(|n| {
            LimitSettings::check_max_open_processes(field, n)
                .map_err(|e| ApiError::invalid(format!("{}: {}", e.field, e.expected)))
                .map(|()| i32::try_from(n).unwrap_or(i32::MAX))
        })
        .transpose()?;
    let own = objectsync_store::organizations::Limits {
        writes_per_second: own.writes_per_second,
        writes_burst: own.writes_burst,
        reads_per_second: own.reads_per_second,
        reads_burst: own.reads_burst,
        max_open_processes: cap,
    };
    let client = state.pool.get().await?;
    Ok(Json(
        service::set_limits(&client, &state.limits, org, own).await?,
    ))
}
