//! API keys of an organization, over the admin API and the CLI: list them
//! and revoke one, so that rotating a key (create the new one, deploy it,
//! revoke the old) needs no browser. Creating one is in `service`. A key
//! is named by the hex of its SHA-256, which is what is stored: the list
//! gives it, and whoever holds the key can compute it
//! (`printf %s "$KEY" | sha256sum`). A revoked key is refused from the
//! next request on, on every ingest replica: each request looks its key
//! up in the database.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use objectsync_model::{FieldError, KeyId, KeyIdError, OrgId};
use objectsync_store::{GenericClient, organizations};
use serde::Serialize;
use utoipa::ToSchema;

use super::service::{AdminError, no_such_org};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use crate::web::{PathParts, org_id, timestamp};

/// One of an organization's API keys (never the key itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyOut {
    /// The hex of the key's SHA-256: names it to revoke it.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub id: String,
    /// The key's last four characters, to tell keys apart (`null` for
    /// keys made before hints were kept).
    pub hint: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was revoked; `null` while it works.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// When it last authenticated a request, to the minute; `null` if it
    /// has not since this was recorded. Check it before revoking a key
    /// being rotated out.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

/// The keys of `org`, newest first, revoked ones included.
pub async fn list(c: &impl GenericClient, org: OrgId) -> Result<Vec<KeyOut>, AdminError> {
    if !organizations::exists(c, org).await? {
        return Err(no_such_org(org));
    }
    Ok(organizations::keys(c, org)
        .await?
        .into_iter()
        .map(|k| KeyOut {
            id: hex::encode(&k.key_hash),
            hint: k.hint,
            created_at: timestamp(k.created_at),
            revoked_at: k.revoked_at.map(timestamp),
            last_used_at: k.last_used_at.map(timestamp),
        })
        .collect())
}

/// Revokes the live key `id` (see [`KeyOut::id`]) of `org`.
pub async fn revoke(c: &impl GenericClient, org: OrgId, id: &str) -> Result<(), AdminError> {
    let key: KeyId = id
        .parse()
        .map_err(|e: KeyIdError| FieldError::new("key_id", e.to_string()))?;
    if !organizations::revoke_key(c, org, key.hash()).await? {
        if !organizations::exists(c, org).await? {
            return Err(no_such_org(org));
        }
        return Err(AdminError::NotFound(format!(
            "organization {org} has no live key {id}"
        )));
    }
    tracing::warn!(org_id = org.get(), key_id = id, "API key revoked");
    Ok(())
}

#[utoipa::path(
    get,
    path = "/admin/organizations/{org_id}/api-keys",
    operation_id = "listApiKeys",
    tag = "admin",
    params(("org_id" = i64, Path, minimum = 1)),
    responses(
        (status = 200, body = Vec<KeyOut>),
        (status = 404, body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
/// The organization's API keys, newest first, revoked ones included.
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    PathParts(raw): PathParts<String>,
) -> ApiResult<Json<Vec<KeyOut>>> {
    let org = org_id(&raw)?;
    let client = state.pool.get().await?;
    Ok(Json(list(&client, org).await?))
}

#[utoipa::path(
    delete,
    path = "/admin/organizations/{org_id}/api-keys/{key_id}",
    operation_id = "revokeApiKey",
    tag = "admin",
    params(
        ("org_id" = i64, Path, minimum = 1),
        ("key_id" = String, Path, pattern = "^[0-9a-f]{64}$",
            description = "The hex of the key's SHA-256, as listed"),
    ),
    responses(
        (status = 204, description = "Revoked: from the next request on, the key gets 401"),
        (status = 400, description = "Not a key id", body = ErrorBody),
        (status = 404, description = "No such organization, or no live key of it by that id", body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
/// Revokes an API key: every request with it gets `401` from then on.
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    PathParts((raw_org, id)): PathParts<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_id(&raw_org)?;
    let client = state.pool.get().await?;
    revoke(&client, org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
