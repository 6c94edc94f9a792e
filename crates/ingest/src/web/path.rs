//! Path parameters, with refusals that are the API's JSON errors.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use objectsync_model::OrgId;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// Path parameters; a segment that does not decode (`%ff`) is a 400.
pub(crate) struct PathParts<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParts<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Self(t))
            .map_err(|e| ApiError::invalid(format!("malformed path: {}", e.body_text())))
    }
}

/// An organization id in a path: a positive integer, digits only.
pub(crate) fn org_id(raw: &str) -> ApiResult<OrgId> {
    // Digits only: Rust's integer parser also takes a sign ("+5").
    Some(raw)
        .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|r| r.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .map(OrgId)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "organization id '{raw}' must be a positive integer"
            ))
        })
}
