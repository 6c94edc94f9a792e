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
//! until commit ([`crate::processes::insert`]). [`barrier`] waits until the
//! transactions that hold it at that instant are gone: a transaction that
//! drew a lower id than the batch being applied holds it now or is done,
//! and one that takes it later draws a higher id. It never takes the lock
//! itself, so it never makes ingest wait.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use deadpool_postgres::Pool;
use objectsync_model::{OrgId, ProcessId, ProcessKind};

use crate::{GenericClient, StoreError, StoreResult};

/// The advisory lock class of ordering locks ("osor").
const LOCK_CLASS: i32 = 0x6f73_6f72;

/// The advisory lock of `org`'s ordering: (class, key). Organizations whose
/// ids agree modulo 2³¹ share a lock, which only costs them an occasional
/// short wait.
pub(crate) fn lock_key(org: OrgId) -> (i32, i32) {
    (LOCK_CLASS, (org.get() & 0x7fff_ffff) as i32)
}

/// Waits until every transaction of `org` that drew a process id before now
/// has committed or rolled back.
///
/// Each check takes a connection from `pool` and gives it back before the
/// pause that follows: many batches may wait here at once (up to prefetch
/// times partitions per worker), more than the pool has connections, and
/// a connection held while only waiting is one the batches being applied
/// lack.
pub async fn barrier(pool: &Pool, org: OrgId) -> StoreResult<()> {
    let mut holders = holders(&pool.get().await?, org, None).await?;
    let mut pauses = BARRIER_BACKOFF.build();
    while !holders.is_empty() {
        tokio::time::sleep(pauses.next().unwrap_or(BARRIER_MAX_PAUSE)).await;
        holders = self::holders(&pool.get().await?, org, Some(&holders)).await?;
    }
    Ok(())
}

/// The pauses between checks of [`barrier`]: from 1 ms, doubling, up to
/// 20 ms. The transactions waited for are ingest's, which commit within
/// milliseconds.
const BARRIER_BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(1))
    .with_max_delay(BARRIER_MAX_PAUSE)
    .without_max_times();
const BARRIER_MAX_PAUSE: Duration = Duration::from_millis(20);

/// The transactions (virtual ids) holding `org`'s ordering lock now; with
/// `among`, only those of them.
async fn holders(
    c: &impl GenericClient,
    org: OrgId,
    among: Option<&[String]>,
) -> StoreResult<Vec<String>> {
    let (class, key) = lock_key(org);
    // Two-key advisory locks show as (classid, objid) with objsubid 2.
    // Advisory locks belong to a database; pg_locks shows every database's,
    // and another database on the same server (another deployment) may use
    // the same key for an organization of its own.
    Ok(crate::query_one(
        c,
        "select coalesce(array_agg(virtualtransaction), '{}') from pg_locks
          where locktype = 'advisory' and classid = $1::int4::oid and objid = $2::int4::oid
            and objsubid = 2 and granted
            and database = (select oid from pg_database where datname = current_database())
            and ($3::text[] is null or virtualtransaction = any($3))",
        &[&class, &key, &among],
    )
    .await?
    .get(0))
}

/// An open process, as far as ordering needs it without its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenProcess {
    pub id: ProcessId,
    /// Conflicts with every batch: it names records by `id`, or it was
    /// accepted before footprints existed.
    pub wide: bool,
    pub links: bool,
    pub delete: bool,
}

/// The processes of `org` older than `id` that are still open, oldest
/// first, without their keys (see [`keys`]).
pub async fn older_open(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
) -> StoreResult<Vec<OpenProcess>> {
    crate::query(
        c,
        "select id, name::text, footprint_wide or footprint_keys is null, footprint_links
           from processes
          where org_id = $1 and id < $2 and status in ('queued', 'in_process')
          order by id",
        &[&org, &id],
    )
    .await?
    .iter()
    .map(|r| {
        let kind: ProcessKind = r.get::<_, &str>(1).parse().map_err(StoreError::stored)?;
        Ok(OpenProcess {
            id: r.get(0),
            wide: r.get(2),
            links: r.get(3),
            delete: kind == ProcessKind::Delete,
        })
    })
    .collect()
}

/// The footprint keys of these processes (a process that is final by now
/// has none and is left out).
pub async fn keys(
    c: &impl GenericClient,
    org: OrgId,
    ids: &[ProcessId],
) -> StoreResult<Vec<(ProcessId, Vec<i64>)>> {
    Ok(crate::query(
        c,
        "select id, footprint_keys from processes
          where org_id = $1 and id = any($2) and footprint_keys is not null",
        &[&org, &ids],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrier_checks_double_their_pause_from_one_to_twenty_milliseconds() {
        // In whole milliseconds: backon multiplies in f32, off by a few ns.
        let pauses: Vec<u128> = BARRIER_BACKOFF
            .build()
            .take(7)
            .map(|p| p.as_millis())
            .collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 20, 20]);
        assert!(
            BARRIER_BACKOFF.build().nth(10_000).is_some(),
            "never gives up"
        );
    }
}
