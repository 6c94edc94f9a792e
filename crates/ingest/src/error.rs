//! The one error type of the HTTP API: a Brevo code and a message, rendered
//! as `{"code": ..., "message": ...}` with the status that goes with the code.
//!
//! Internal failures are logged in full and answered with a generic message;
//! database and broker outages become `503` so that clients retry.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use objectsync_model::limits::BACKLOG_RETRY_AFTER_SECS;
use objectsync_model::{ApiCode, RequestError};
use serde::Serialize;
use utoipa::ToSchema;

use objectsync_store::{ErrorKind, StoreError};

use crate::publisher::PublishError;

/// Every error answer: a Brevo code and a message for people.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub code: ApiCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ApiCode,
    pub message: String,
    /// Seconds to wait before trying again (a `Retry-After` header).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ApiCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ApiCode::InvalidParameter, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ApiCode::DocumentNotFound, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ApiCode::Unauthorized, message)
    }

    /// Logs `error` and answers 503 (transient) or 500 (anything else).
    pub fn internal(error: &dyn std::fmt::Display, transient: bool) -> Self {
        if transient {
            tracing::warn!(error = %error, "dependency unavailable");
            Self::new(
                ApiCode::ServiceUnavailable,
                "The service cannot take the request right now; retry later",
            )
        } else {
            tracing::error!(error = %error, "internal error");
            Self::new(ApiCode::InternalError, "Internal error; see the server log")
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        Self::new(e.code, e.message)
    }
}

/// Database failures, mapped once by kind: unavailable (503, retry; a
/// statement that ran into `database.statement_timeout_ms` or
/// `database.lock_timeout_ms` says so), a constraint the request ran into
/// (409), anything else (500).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.kind() {
            ErrorKind::Transient if e.is_timeout() => {
                tracing::warn!(error = %e, "database statement timed out");
                Self::new(
                    ApiCode::ServiceUnavailable,
                    "The database did not answer in time (a statement or lock timeout); retry later",
                )
            }
            ErrorKind::Transient => Self::internal(&e, true),
            ErrorKind::Conflict => {
                tracing::warn!(error = %e, "request ran into a constraint");
                Self::new(
                    ApiCode::Conflict,
                    "The request conflicts with the current state; retry or change it",
                )
            }
            ErrorKind::Permanent => Self::internal(&e, false),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::from(e).into()
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Request(r) => r.into(),
            PublishError::Backlog { open } => {
                metrics::counter!("objectsync_requests_limited_total", "reason" => "backlog")
                    .increment(1);
                let after = BACKLOG_RETRY_AFTER_SECS;
                let mut e = Self::new(
                    ApiCode::TooManyRequests,
                    format!(
                        "This organization has {open} batches waiting to be applied, its cap \
                         (max_open_processes); send more once some are done; retry after {after} s"
                    ),
                );
                e.retry_after = Some(after);
                e
            }
            PublishError::AlreadyResolved => Self::new(ApiCode::Conflict, e.to_string()),
            PublishError::Database(e) => e.into(),
            PublishError::Unavailable(_) => Self::internal(&e, true),
            PublishError::Internal(_) => Self::internal(&e, false),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            Json(ErrorBody {
                code: self.code,
                message: self.message,
            }),
        )
            .into_response();
        if let Some(after) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, after.into());
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
