//! Webhooks of an organization, over the admin API (and for the console):
//! register one (its secret shown this once), list them, delete one.
//! Deliveries are made by the workers (`objectsync_worker`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use objectsync_infra::webhook::{check_url, new_key, secret_text};
use objectsync_model::{ApiCode, FieldError, OrgId};
use objectsync_store::{GenericClient, organizations, webhooks};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::{AdminError, no_such_org};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::web::{PathParts, json_request, org_id, timestamp};

/// A webhook to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookIn {
    /// Where the organization's events are POSTed: an absolute `http` or
    /// `https` URL (private addresses may be refused, see
    /// `WEBHOOKS__ALLOW_PRIVATE_ADDRESSES`).
    #[schema(min_length = 1, max_length = 2048)]
    pub(crate) url: String,
}

/// A webhook just registered, with its secret, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub id: i64,
    pub url: String,
    /// `whsec_` and the base64 of the signing key, as the Standard
    /// Webhooks libraries take it. Shown once.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/=]+$")]
    pub secret: String,
}

/// A registered webhook (its secret is not shown again).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct WebhookOut {
    pub(crate) id: i64,
    pub(crate) url: String,
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
}

/// Registers `url` for `org`'s events, by `who` if known: the webhook with
/// its secret. The admin API and the console both register through here.
pub async fn create(
    c: &impl GenericClient,
    org: OrgId,
    url: &str,
    who: Option<&str>,
    allow_private: bool,
) -> Result<CreatedWebhook, AdminError> {
    check_url(url, allow_private).map_err(|m| FieldError::new("url", m))?;
    let key = new_key().expect("the OS random number generator failed");
    let hook = webhooks::create(c, org, url, &key, who)
        .await?
        .ok_or_else(|| no_such_org(org))?;
    Ok(CreatedWebhook {
        id: hook.id,
        url: hook.url,
        secret: secret_text(&key),
    })
}

#[utoipa::path(
    post,
    path = "/admin/organizations/{org_id}/webhooks",
    operation_id = "createWebhook",
    tag = "admin",
    params(("org_id" = i64, Path, minimum = 1)),
    request_body(content = WebhookIn, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; the secret is shown this once", body = CreatedWebhook),
        (status = 404, body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 415, body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
/// Registers a webhook: the completion event of every process of the
/// organization that ends from now on is POSTed to it, signed as Standard
/// Webhooks 1.0 says.
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    PathParts(raw): PathParts<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let org = org_id(&raw)?;
    let bytes = json_request(&headers, body)?;
    let asked: WebhookIn = super::body::read(&bytes, ApiCode::MissingParameter)?;
    let client = state.pool.get().await?;
    let created = create(&client, org, &asked.url, None, state.allow_private_webhooks).await?;
    tracing::info!(
        org_id = org.get(),
        webhook_id = created.id,
        "webhook registered"
    );
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get,
    path = "/admin/organizations/{org_id}/webhooks",
    operation_id = "listWebhooks",
    tag = "admin",
    params(("org_id" = i64, Path, minimum = 1)),
    responses(
        (status = 200, body = Vec<WebhookOut>),
        (status = 404, body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
/// The organization's webhooks, oldest first, without their secrets.
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    PathParts(raw): PathParts<String>,
) -> ApiResult<Json<Vec<WebhookOut>>> {
    let org = org_id(&raw)?;
    let client = state.pool.get().await?;
    if !organizations::exists(&client, org).await? {
        return Err(no_such_org(org).into());
    }
    let hooks = webhooks::list(&client, org).await?;
    Ok(Json(
        hooks
            .into_iter()
            .map(|w| WebhookOut {
                id: w.id,
                url: w.url,
                created_at: timestamp(w.created_at),
            })
            .collect(),
    ))
}

#[utoipa::path(
    delete,
    path = "/admin/organizations/{org_id}/webhooks/{webhook_id}",
    operation_id = "deleteWebhook",
    tag = "admin",
    params(
        ("org_id" = i64, Path, minimum = 1),
        ("webhook_id" = i64, Path, minimum = 1),
    ),
    responses(
        (status = 204, description = "Deleted, with its pending and failed deliveries"),
        (status = 404, description = "No such webhook of this organization", body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
/// Deletes a webhook; deliveries not made yet are dropped.
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    PathParts((raw_org, raw_hook)): PathParts<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_id(&raw_org)?;
    let id = raw_hook
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "webhook id '{raw_hook}' must be a positive integer"
            ))
        })?;
    let client = state.pool.get().await?;
    if !webhooks::delete(&client, org, id).await? {
        return Err(ApiError::not_found(format!(
            "organization {org} has no webhook {id}"
        )));
    }
    tracing::info!(org_id = org.get(), webhook_id = id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}
