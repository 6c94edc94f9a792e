//! The `console_sessions` table: a console login is valid while its row
//! is there, not ended and not expired, so that logging out ends it on
//! every ingest replica. Sessions are named by the SHA-256 of the id their
//! cookie carries, so that the table alone opens nothing.

use chrono::{DateTime, Utc};

use crate::{GenericClient, StoreResult};

/// Records a new session of `who`, valid until `expires_at`, and forgets
/// sessions that expired more than a day ago (logins are rare, and the
/// table holds a few rows a day).
pub async fn start(
    c: &impl GenericClient,
    id: &[u8],
    who: &str,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    crate::execute(
        c,
        "delete from console_sessions where expires_at < now() - interval '1 day'",
        &[],
    )
    .await?;
    crate::execute(
        c,
        "insert into console_sessions (id, who, expires_at) values ($1, $2, $3)",
        &[&id, &who, &expires_at],
    )
    .await
    .map(drop)
}

/// Whether session `id` may still be used: one primary-key lookup, made on
/// every console request.
pub async fn is_live(c: &impl GenericClient, id: &[u8]) -> StoreResult<bool> {
    Ok(crate::query(
        c,
        "select 1 from console_sessions
          where id = $1 and ended_at is null and expires_at > now()",
        &[&id],
    )
    .await?
    .len()
        == 1)
}

/// Ends session `id` (logout); whether it was live.
pub async fn end(c: &impl GenericClient, id: &[u8]) -> StoreResult<bool> {
    Ok(crate::execute(
        c,
        "update console_sessions set ended_at = now() where id = $1 and ended_at is null",
        &[&id],
    )
    .await?
        == 1)
}
