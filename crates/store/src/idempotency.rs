//! The `idempotency_keys` table: an `Idempotency-Key` claimed in the
//! transaction that creates the process, so that two identical requests
//! racing each other serialize on the key's row: the second waits for the
//! first to commit (or roll back) and then sees it.

use objectsync_model::{OrgId, ProcessId};

use crate::{GenericClient, StoreResult};

/// How a request stands against its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First use of the key (or first in 24 hours): go on.
    Fresh,
    /// The same request was accepted before as this process.
    Replay(ProcessId),
    /// The key was used for a different request.
    Conflict,
}

/// Claims `key` for `process`, inside the caller's transaction; `hash`
/// identifies the request.
pub async fn claim(
    tx: &impl GenericClient,
    org: OrgId,
    key: &str,
    hash: &[u8],
    process: ProcessId,
) -> StoreResult<Claim> {
    if crate::query_opt(
        tx,
        "insert into idempotency_keys (org_id, key, request_hash, process_id)
         values ($1, $2, $3, $4)
         on conflict (org_id, key) do update
            set request_hash = excluded.request_hash,
                process_id = excluded.process_id,
                created_at = excluded.created_at
          where excluded.created_at - idempotency_keys.created_at > interval '24 hours'
         returning process_id",
        &[&org, &key, &hash, &process],
    )
    .await?
    .is_some()
    {
        return Ok(Claim::Fresh);
    }
    let row = crate::query_one(
        tx,
        "select request_hash, process_id from idempotency_keys where org_id = $1 and key = $2",
        &[&org, &key],
    )
    .await?;
    let (stored, previous): (Vec<u8>, ProcessId) = (row.get(0), row.get(1));
    Ok(if stored == hash {
        Claim::Replay(previous)
    } else {
        Claim::Conflict
    })
}

/// Forgets at most `limit` keys older than 24 hours, oldest first (from
/// the index on `created_at`); returns how many. A key claimed again while
/// this runs has a new `created_at` and is kept.
pub async fn sweep(c: &impl GenericClient, limit: i64) -> StoreResult<u64> {
    crate::execute(
        c,
        "delete from idempotency_keys k
          using (select org_id, key from idempotency_keys
                  where created_at < now() - interval '24 hours'
                  order by created_at limit $1) old
          where k.org_id = old.org_id and k.key = old.key
            and k.created_at < now() - interval '24 hours'",
        &[&limit],
    )
    .await
}
