//! Where an organization's open batches are queued: what ingest reads to
//! route its next batch to the express or a bulk queue (see the ingest
//! crate's `lanes`).

use objectsync_model::OrgId;

use crate::{GenericClient, StoreResult};

/// Class of the advisory lock that serializes the choice of a bulk queue for
/// one organization ("osln"); the key is the organization, as in
/// [`crate::order`].
const LOCK_CLASS: i32 = 0x6f73_6c6e;

/// The queues of `org`'s newest open processes, newest first, at most `n`
/// of them; `None` for a process accepted before queues were recorded.
/// Reads the partial index of open processes backwards, so it costs `n`
/// index entries at most, however long the organization's history.
pub async fn open_queues(
    c: &impl GenericClient,
    org: OrgId,
    n: i64,
) -> StoreResult<Vec<Option<String>>> {
    Ok(crate::query(c, OPEN_QUEUES_SQL, &[&org, &n])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The statement [`open_queues`] runs (org, n): public so that tests can
/// check its plan.
pub const OPEN_QUEUES_SQL: &str = "select queue from processes
  where org_id = $1 and status in ('queued', 'in_process')
  order by id desc limit $2";

/// Takes, until the transaction ends, the lock under which a bulk queue is
/// chosen for `org`: requests of one organization that start a backlog at
/// the same moment choose one after the other, and the later ones find the
/// first one's choice (committed by then) instead of making their own.
pub async fn lock_choice(tx: &impl GenericClient, org: OrgId) -> StoreResult<()> {
    let key = (org.get() & 0x7fff_ffff) as i32;
    crate::execute(
        tx,
        "select pg_advisory_xact_lock($1, $2)",
        &[&LOCK_CLASS, &key],
    )
    .await?;
    Ok(())
}
