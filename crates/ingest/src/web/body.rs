//! Request bodies: JSON, of a supported media type, at most 1 MiB, or a
//! clear 4xx answer.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use objectsync_model::ApiCode;
use objectsync_model::limits::MAX_BODY_BYTES;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// The `413 payload_too_large` of a body past 1 MiB (a request's, or an
/// inbox message's).
pub fn too_large() -> ApiError {
    ApiError::new(
        ApiCode::PayloadTooLarge,
        format!("The body must be at most {MAX_BODY_BYTES} bytes"),
    )
}

/// The raw body, or `413 payload_too_large` past 1 MiB.
pub fn body_bytes(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::new(ApiCode::BadRequest, rejection.body_text())
        }
    })
}

/// Refuses, with `415`, a body the server cannot read as sent: a declared
/// media type other than JSON (`application/json`, or a `+json` type), or a
/// `Content-Encoding` other than `identity` (bodies are not decompressed).
/// A body without a content type is read as JSON, as curl sends it.
pub fn check_media_type(headers: &HeaderMap) -> ApiResult<()> {
    let unsupported = |m: String| ApiError::new(ApiCode::UnsupportedMediaType, m);
    for encoding in headers.get_all(header::CONTENT_ENCODING) {
        let text = encoding.to_str().unwrap_or("?");
        if text
            .split(',')
            .map(str::trim)
            .any(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
        {
            return Err(unsupported(format!(
                "Content-Encoding '{text}' is not supported; send the body uncompressed"
            )));
        }
    }
    if let Some(value) = headers.get(header::CONTENT_TYPE) {
        let text = value.to_str().unwrap_or("?");
        let essence = text
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let json = essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"));
        if !json {
            return Err(unsupported(format!(
                "Content-Type '{text}' is not supported; send application/json \
                 (with curl: -H 'content-type: application/json')"
            )));
        }
    }
    Ok(())
}

/// The raw body of a JSON request: `415` for another media type or an
/// encoding, `413` past 1 MiB.
pub fn json_request(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    check_media_type(headers)?;
    body_bytes(body)
}

/// The body parsed as a JSON object, or `415` / `413` / `400 bad_request`.
pub fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult<Value> {
    let bytes = json_request(headers, body)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::new(
            ApiCode::BadRequest,
            "the body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            ApiCode::BadRequest,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}
