//! `Idempotency-Key`: the same key with the same request within 24 hours
//! answers the process of the first request and queues nothing new; the same
//! key with another request is a 422.
//!
//! The key is claimed in the transaction that creates the process, so two
//! identical requests racing each other serialize on the key's row: the
//! second waits for the first to commit (or roll back) and then sees it.

use objectsync_model::limits::MAX_IDEMPOTENCY_KEY_CHARS;
use objectsync_model::{ApiCode, Job, ObjectTypeName, RequestError};
use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;

/// How a request stands against its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// First use of the key (or first in 24 hours): go on.
    Fresh,
    /// The same request was accepted before as this process.
    Replay(i64),
    /// The key was used for a different request.
    Conflict,
}

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

/// Claims `key` for `process_id`, inside the caller's transaction.
pub(crate) async fn claim(
    tx: &impl GenericClient,
    org_id: i64,
    key: &str,
    hash: &[u8],
    process_id: i64,
) -> Result<Claim, tokio_postgres::Error> {
    let claimed = tx
        .query_opt(
            "insert into idempotency_keys (org_id, key, request_hash, process_id)
             values ($1, $2, $3, $4)
             on conflict (org_id, key) do update
                set request_hash = excluded.request_hash,
                    process_id = excluded.process_id,
                    created_at = now()
              where idempotency_keys.created_at < now() - interval '24 hours'
             returning process_id",
            &[&org_id, &key, &hash, &process_id],
        )
        .await?;
    if claimed.is_some() {
        return Ok(Claim::Fresh);
    }
    let row = tx
        .query_one(
            "select request_hash, process_id from idempotency_keys where org_id = $1 and key = $2",
            &[&org_id, &key],
        )
        .await?;
    let (stored, previous): (Vec<u8>, i64) = (row.get(0), row.get(1));
    Ok(if stored == hash {
        Claim::Replay(previous)
    } else {
        Claim::Conflict
    })
}

/// The 422 for a key reused with another request.
pub(crate) fn conflict(key: &str) -> RequestError {
    RequestError::new(
        ApiCode::UnprocessableEntity,
        format!("Idempotency-Key '{key}' was already used with a different request"),
    )
}

/// Forgets keys older than 24 hours; returns how many.
pub async fn sweep(client: &impl GenericClient) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "delete from idempotency_keys where created_at < now() - interval '24 hours'",
            &[],
        )
        .await
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
