//! API keys and the `api-key` header.
//!
//! Keys are 256 random bits, shown once and stored only as their SHA-256:
//! for keys of that entropy a fast hash is as safe as a slow one, and it
//! keeps the per-request check to one indexed lookup.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use objectsync_model::{ApiCode, OrgId};
use objectsync_store::limits::Class;
use objectsync_store::organizations;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// Prefix of every key, so that leaked keys are easy to recognise and grep.
const KEY_PREFIX: &str = "osk_";

/// A new random API key.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not something to recover from.
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// What is stored for a key.
pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// The last four characters of a key, kept to tell keys apart: 16 bits of
/// a 256-bit key, no help in guessing it.
pub fn key_hint(key: &str) -> &str {
    let start = key.len().saturating_sub(4);
    key.get(start..).unwrap_or_default()
}

/// The organization a public API request acts for: authenticated by its
/// `api-key` header and allowed to use custom objects.
#[derive(Debug, Clone, Copy)]
pub struct Org {
    pub id: OrgId,
    /// Its limits (rate limits are already applied to this request).
    pub(crate) limits: crate::limits::Effective,
}

impl FromRequestParts<AppState> for Org {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get("api-key")
            .map(|k| k.to_str().unwrap_or_default());
        let class = crate::limits::class(&parts.method);
        authenticate(state, key, class, crate::limits::slot(parts)).await
    }
}

/// The organization whose API `key` this is, allowed to use custom objects,
/// with a token taken from its bucket of `class`: `401` without a key or
/// with one that is unknown or revoked, `403` for an organization without
/// custom objects, `429` over its rate. The one check of both the HTTP API
/// and the inbox; the limit's verdict goes in `slot`.
pub(crate) async fn authenticate(
    state: &AppState,
    key: Option<&str>,
    class: Class,
    slot: Option<&crate::limits::Slot>,
) -> Result<Org, ApiError> {
    let Some(key) = key else {
        return Err(ApiError::unauthorized(
            "Key not found: send your API key in the 'api-key' header",
        ));
    };
    let client = state.pool.get().await?;
    let hash = hash_key(key);
    let Some(owner) = organizations::by_key(&client, &hash).await? else {
        return Err(ApiError::unauthorized("Key not found"));
    };
    state.key_use.record(&state.pool, &hash);
    crate::trace::record_org(owner.org);
    if !owner.custom_objects_enabled {
        return Err(ApiError::new(
            ApiCode::PermissionDenied,
            "Custom objects are not available on this account",
        ));
    }
    let limits = crate::limits::Effective::of(&state.limits, &owner.limits);
    crate::limits::check(&client, &owner, &limits, class, slot).await?;
    Ok(Org {
        id: owner.org,
        limits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_stably() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), hash_key(&b));
    }
}
