//! The admin HTTP API. Disabled (404) unless an admin token is configured;
//! every call must carry it in the `admin-token` header.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use objectsync_model::{ApiCode, DefinitionInput};
use serde_json::{Value, json};

use super::service::{self, AdminError};
use crate::api::json_body;
use crate::auth::secrets_match;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(m) => Self::not_found(m),
            AdminError::Invalid(f) => Self::invalid(f.to_string()),
            AdminError::Postgres(e) => e.into(),
            AdminError::Stored(e) => Self::internal(&e, false),
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
        .route("/admin/processes/stale", get(stale_processes))
        .route_layer(middleware::from_fn_with_state(state, require_token))
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
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

fn org_id(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::invalid(format!(
            "organization id '{raw}' must be a positive integer"
        ))
    })
}

async fn create_org(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": org.id,
            "name": org.name,
            "custom_objects_enabled": org.custom_objects_enabled,
            "api_key": org.api_key,
        })),
    ))
}

async fn create_key(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org_id = org_id(&raw)?;
    let client = state.pool.get().await?;
    let key = service::create_key(&client, org_id).await?;
    Ok((StatusCode::CREATED, Json(json!({"api_key": key}))))
}

async fn put_object(
    State(state): State<AppState>,
    Path((raw, object_type)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<Value>> {
    let org_id = org_id(&raw)?;
    let body = json_body(&headers, body)?;
    let input = DefinitionInput::from_json(&body).map_err(|e| ApiError::invalid(e.to_string()))?;
    let mut client = state.pool.get().await?;
    let stored = service::put_object_type(&mut client, org_id, &object_type, input).await?;
    Ok(Json(service::definition_json(&stored)))
}

async fn list_objects(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let org_id = org_id(&raw)?;
    let client = state.pool.get().await?;
    let types = service::list_object_types(&client, org_id).await?;
    Ok(Json(Value::Array(
        types.iter().map(service::definition_json).collect(),
    )))
}

/// `GET /admin/processes/stale?older_than=SECS&limit=N`: open processes with
/// no delivery for `older_than` seconds (default 600), oldest first.
async fn stale_processes(
    State(state): State<AppState>,
    params: crate::api::Params,
) -> ApiResult<Json<Value>> {
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
    let stale = objectsync_infra::liveness::list(&**client, secs, limit).await?;
    Ok(Json(json!(stale)))
}
