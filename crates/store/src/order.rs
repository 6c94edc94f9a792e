//! Acceptance order: an organization's batches end as if applied one at a
//! time in `processId` order.
//!
//! Each process carries its batch's footprint (what it touches, see
//! `objectsync_model::wire::Footprint`). Before applying a batch, a worker
//! finds the organization's older processes still open whose footprints
//! conflict with its own, and waits until they are final. Batches that do
//! not conflict commute, so they are applied side by side, by any number of
//! workers, in whatever order they arrive.
//!
//! "Older processes still open" must be complete: a process id is drawn
//! before its transaction commits, so a lower id may still be invisible.
//! Ingest draws ids holding the organization's ordering lock in shared mode
//! until commit ([`crate::processes::insert`]); [`barrier`] takes it in
//! exclusive mode for an instant, which waits out every transaction that
//! drew a lower id. After it, no older process can appear.

use objectsync_model::wire::Footprint;
use objectsync_model::{OrgId, ProcessId, ProcessKind};
use tokio_postgres::Row;

use crate::{GenericClient, StoreError, StoreResult};

/// The advisory lock class of ordering locks ("osor").
const LOCK_CLASS: i32 = 0x6f73_6f72;

/// The advisory lock of `org`'s ordering: (class, key). Organizations whose
/// ids agree modulo 2³¹ share a lock, which only costs them an occasional
/// short wait.
pub(crate) fn lock_key(org: OrgId) -> (i32, i32) {
    (LOCK_CLASS, (org.get() & 0x7fff_ffff) as i32)
}

/// Reads a footprint from `row`, whose column `at` is the process name and
/// the three after it the footprint columns. A process accepted before
/// footprints existed has none and conflicts with everything.
pub(crate) fn footprint(row: &Row, at: usize) -> StoreResult<Footprint> {
    let kind: ProcessKind = row.get::<_, &str>(at).parse().map_err(StoreError::stored)?;
    let keys: Option<Vec<i64>> = row.get(at + 1);
    Ok(Footprint {
        wide: keys.is_none() || row.get(at + 2),
        keys: keys.unwrap_or_default(),
        links: row.get(at + 3),
        delete: kind == ProcessKind::Delete,
    })
}

/// Waits until every transaction of `org` that drew a process id before now
/// has committed or rolled back.
pub async fn barrier(c: &impl GenericClient, org: OrgId) -> StoreResult<()> {
    let (class, key) = lock_key(org);
    // A transaction of its own, so that the lock cannot outlive it.
    c.batch_execute(&format!(
        "begin; select pg_advisory_xact_lock({class}, {key}); commit;"
    ))
    .await
    .map_err(Into::into)
}

/// The processes of `org` older than `id` that are still open, with their
/// footprints, oldest first.
pub async fn older_open(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
) -> StoreResult<Vec<(ProcessId, Footprint)>> {
    crate::query(
        c,
        "select id, name::text, footprint_keys, footprint_wide, footprint_links
           from processes
          where org_id = $1 and id < $2 and status in ('queued', 'in_process')
          order by id",
        &[&org, &id],
    )
    .await?
    .iter()
    .map(|r| Ok((r.get(0), footprint(r, 1)?)))
    .collect()
}

/// Which of `ids` are still open.
pub async fn still_open(
    c: &impl GenericClient,
    org: OrgId,
    ids: &[ProcessId],
) -> StoreResult<Vec<ProcessId>> {
    Ok(crate::query(
        c,
        "select id from processes
          where org_id = $1 and id = any($2) and status in ('queued', 'in_process')",
        &[&org, &ids],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}
