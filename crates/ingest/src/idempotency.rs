//! `Idempotency-Key`: the same key with the same request within 24 hours
//! answers the process of the first request and queues nothing new; the same
//! key with another request is a 422.
//!
//! The key is claimed in the transaction that creates the process (see
//! `objectsync_store::idempotency`); this module checks the header and says
//! what makes two requests the same.

use objectsync_model::limits::MAX_IDEMPOTENCY_KEY_CHARS;
use objectsync_model::{ApiCode, Job, ObjectTypeName, RequestError};
use sha2::{Digest, Sha256};

/// Checks the header's value.
pub fn check_key(raw: &str) -> Result<&str, RequestError> {
    if raw.is_empty() {
        return Err(RequestError::invalid("Idempotency-Key must not be empty"));
    }
    if raw.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(RequestError::invalid(format!(
            "Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters long"
        )));
    }
    Ok(raw)
}

/// A digest of what the request asks for (see [`Job::fingerprint`]): the
/// same JSON with keys in another order or other whitespace is the same
/// request.
pub(crate) fn request_hash(object_type: &ObjectTypeName, job: &Job<'_>) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(job.kind().name().as_bytes());
    hasher.update([0]);
    hasher.update(object_type.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(&job.fingerprint()).unwrap_or_default());
    hasher.finalize().to_vec()
}

/// The 422 for a key reused with another request.
pub(crate) fn conflict(key: &str) -> RequestError {
    RequestError::new(
        ApiCode::UnprocessableEntity,
        format!("Idempotency-Key '{key}' was already used with a different request"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectsync_model::ProcessKind;

    fn job(body: &str) -> Job<'_> {
        Job::decode(ProcessKind::Upsert, body.as_bytes()).unwrap()
    }

    #[test]
    fn the_same_request_in_other_words_hashes_the_same() {
        let t = ObjectTypeName::parse("vehicle").unwrap();
        let a = request_hash(&t, &job(r#"{"records":[{"attributes":{"a":1,"b":2}}]}"#));
        let b = request_hash(
            &t,
            &job(r#"{ "records" : [ { "attributes" : { "b":2, "a":1 } } ] }"#),
        );
        let c = request_hash(&t, &job(r#"{"records":[{"attributes":{"a":1,"b":3}}]}"#));
        let other = ObjectTypeName::parse("garage").unwrap();
        let d = request_hash(
            &other,
            &job(r#"{"records":[{"attributes":{"a":1,"b":2}}]}"#),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn keys_are_bounded() {
        assert!(check_key("abc").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(256)).is_err());
        assert!(check_key(&"é".repeat(255)).is_ok());
    }
}
