//! Error codes: the request-level codes of the public API (Brevo's set) and
//! the record-level codes stored with each rejected record.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The `code` of an error answer. Brevo's codes, plus two for server-side
/// failures, which Brevo's set does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ApiCode {
    InvalidParameter,
    MissingParameter,
    OutOfRange,
    DocumentNotFound,
    PermissionDenied,
    Unauthorized,
    BadRequest,
    UnprocessableEntity,
    PayloadTooLarge,
    /// 415: a body in a media type or encoding the server does not read.
    UnsupportedMediaType,
    MethodNotAllowed,
    /// 409: the request ran into a constraint of the stored data.
    Conflict,
    /// 429: over the organization's rate limit or backlog cap.
    TooManyRequests,
    /// 500: a bug or an unexpected failure; details are in the server log.
    InternalError,
    /// 503: the database or the broker cannot take the request right now.
    ServiceUnavailable,
}

impl ApiCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidParameter
            | Self::MissingParameter
            | Self::OutOfRange
            | Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::PermissionDenied => 403,
            Self::DocumentNotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict => 409,
            Self::TooManyRequests => 429,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::UnprocessableEntity => 422,
            Self::InternalError => 500,
            Self::ServiceUnavailable => 503,
        }
    }
}

/// A request refused before anything was queued: a code and a message for
/// the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct RequestError {
    pub code: ApiCode,
    pub message: String,
}

impl RequestError {
    pub fn new(code: ApiCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ApiCode::BadRequest, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ApiCode::InvalidParameter, message)
    }

    pub fn out_of_range(message: impl Into<String>) -> Self {
        Self::new(ApiCode::OutOfRange, message)
    }
}

/// Why one record of a batch was not applied (or, for association codes,
/// why one of its links was not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// An `id` that names no record of this type.
    RecordNotFound,
    /// A value that does not fit its attribute's type.
    InvalidAttributeValue,
    /// `id` and `ext_id` that name two different records.
    IdentifierConflict,
    /// The two object types are not associated in the schema.
    AssociationNotDefined,
    /// The record to link to does not exist.
    AssociatedRecordNotFound,
    /// The link would give a record more than the cap of linked records.
    TooManyAssociations,
}

impl RejectionCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RecordNotFound => "record_not_found",
            Self::InvalidAttributeValue => "invalid_attribute_value",
            Self::IdentifierConflict => "identifier_conflict",
            Self::AssociationNotDefined => "association_not_defined",
            Self::AssociatedRecordNotFound => "associated_record_not_found",
            Self::TooManyAssociations => "too_many_associations",
        }
    }
}

impl fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_brevo_spells_them() {
        assert_eq!(
            serde_json::to_string(&ApiCode::DocumentNotFound).unwrap(),
            "\"document_not_found\""
        );
        assert_eq!(
            serde_json::to_string(&RejectionCode::TooManyAssociations).unwrap(),
            format!("\"{}\"", RejectionCode::TooManyAssociations)
        );
        assert_eq!(ApiCode::PayloadTooLarge.status(), 413);
    }
}
