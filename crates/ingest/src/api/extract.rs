//! The parts of a batch request, extracted with refusals that are the API's
//! JSON errors, not the framework's plain text.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode};
use objectsync_model::ProcessKind;

use super::schema::Accepted;
use crate::accept::{Batch, accept};
use crate::auth::Org;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::web::{PathParts, json_request};

/// `POST /v3/objects/{object_type}/batch/...`: who sends it, for which
/// type, and what.
pub(crate) struct BatchRequest {
    org: Org,
    state: AppState,
    object_type: String,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    /// Where the rate limit's verdict is, for a refusal by the backlog cap.
    slot: Option<crate::limits::Slot>,
}

impl FromRequest<AppState> for BatchRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let org = Org::from_request_parts(&mut parts, state).await?;
        let PathParts(object_type) =
            PathParts::<String>::from_request_parts(&mut parts, state).await?;
        crate::trace::record_object_type(&object_type);
        let headers = parts.headers.clone();
        let slot = crate::limits::slot(&parts).cloned();
        let body = Bytes::from_request(Request::from_parts(parts, body), state).await;
        Ok(Self {
            org,
            state: state.clone(),
            object_type,
            headers,
            body,
            slot,
        })
    }
}

impl BatchRequest {
    /// Checks the batch, makes it durable and answers `202 {processId}`.
    pub(crate) async fn submit(self, kind: ProcessKind) -> ApiResult<(StatusCode, Json<Accepted>)> {
        let body = json_request(&self.headers, self.body)?;
        let batch = Batch {
            object_type: &self.object_type,
            kind,
            body: &body,
            idempotency_key: idempotency_key(&self.headers)?,
            request_id: crate::trace::request_id(&self.headers),
        };
        let process_id = accept(&self.state, &self.org, self.slot.as_ref(), batch).await?;
        Ok((StatusCode::ACCEPTED, Json(Accepted::new(process_id))))
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::invalid("Idempotency-Key must be printable ASCII")),
    }
}
