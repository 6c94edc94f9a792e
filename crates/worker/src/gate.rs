//! Waiting for one's turn: before a batch is applied, the organization's
//! older processes that are still open and whose footprints conflict with
//! it must be final (see `objectsync_store::order`).
//!
//! Workers receive an organization's batches roughly in acceptance order,
//! so the ones a batch waits for are almost always being applied right now
//! by another worker (or another slot of this one), and the wait is one
//! batch long. A wait that lasts longer than `worker.order_wait_ms` means
//! the batch it waits for is not in anyone's hands — it went back to the
//! queue after a crash or a failed attempt, possibly behind this one and
//! others waiting like it — so the waiting batch gives its place back
//! (`giveway`) instead of holding a prefetch slot the older one needs.
//! A wait that lasts is reported (`waits`): operators see what the batch
//! waits for, and the stale-process monitor what is lost.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use objectsync_model::wire::Footprint;
use objectsync_model::{BatchMeta, ProcessId};
use objectsync_store::order::{self, OpenProcess};

use crate::error::WorkerError;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Every conflicting older process is final: apply now.
    Go,
    /// Still waiting after the allowed time: give the place back.
    GiveWay,
}

/// Keys by process, and the order they were read in (oldest evicted first).
type Cache = (HashMap<ProcessId, Arc<Vec<i64>>>, VecDeque<ProcessId>);

/// The footprint keys of processes this worker has read, which never change:
/// each is read from the database once, however many batches check their
/// order against it.
#[derive(Default)]
pub struct Footprints {
    inner: Mutex<Cache>,
}

impl Footprints {
    const CAPACITY: usize = 4096;

    fn get(&self, id: ProcessId) -> Option<Arc<Vec<i64>>> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.get(&id).cloned()
    }

    fn put(&self, id: ProcessId, keys: Vec<i64>) -> Arc<Vec<i64>> {
        let keys = Arc::new(keys);
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *guard;
        if map.insert(id, keys.clone()).is_none() {
            order.push_back(id);
            if order.len() > Self::CAPACITY
                && let Some(old) = order.pop_front()
            {
                map.remove(&old);
            }
        }
        keys
    }
}

/// Whether `theirs` must be final before `mine` is applied, when flags
/// decide it without keys.
fn decided(mine: &Footprint, theirs: &OpenProcess) -> bool {
    mine.wide || theirs.wide || (mine.delete && theirs.links) || (theirs.delete && mine.links)
}

/// The older open processes whose batches conflict with `mine`.
async fn blockers(
    pool: &Pool,
    cache: &Footprints,
    meta: &BatchMeta,
    mine: &Footprint,
) -> Result<Vec<ProcessId>, WorkerError> {
    // Without a connection while it waits; one is taken once it is over.
    order::barrier(pool, meta.org_id).await?;
    let client = pool.get().await?;
    let mut blockers = Vec::new();
    let mut unknown = Vec::new();
    for p in order::older_open(&client, meta.org_id, meta.process_id).await? {
        if decided(mine, &p) {
            blockers.push(p.id);
        } else if let Some(keys) = cache.get(p.id) {
            if mine.names_any_of(&keys) {
                blockers.push(p.id);
            }
        } else {
            unknown.push(p.id);
        }
    }
    if !unknown.is_empty() {
        for (id, keys) in order::keys(&client, meta.org_id, &unknown).await? {
            if mine.names_any_of(&cache.put(id, keys)) {
                blockers.push(id);
            }
        }
    }
    Ok(blockers)
}

/// The first pause between checks of a wait.
const FIRST_PAUSE: Duration = Duration::from_millis(1);

/// While a wait is shorter than this, checks come at most [`QUICK_PAUSE`]
/// apart: the batch waited for is almost always being applied right now
/// and ends within tens of milliseconds, and every millisecond between its
/// commit and the next check is a millisecond no worker applies anything
/// of a chain of batches on the same records.
const QUICK_FOR: Duration = Duration::from_millis(500);
const QUICK_PAUSE: Duration = Duration::from_millis(5);

/// Past [`QUICK_FOR`] the batch waited for is probably not in anyone's
/// hands (see the module's comment), and checks slow down to this.
const SLOW_PAUSE: Duration = Duration::from_millis(100);

/// The pause after `pause`, in a wait that has lasted `waited`: doubling,
/// up to [`QUICK_PAUSE`] and then, past [`QUICK_FOR`], to [`SLOW_PAUSE`].
fn next_pause(pause: Duration, waited: Duration) -> Duration {
    let cap = if waited < QUICK_FOR {
        QUICK_PAUSE
    } else {
        SLOW_PAUSE
    };
    (pause * 2).min(cap)
}

/// Waits, for at most `patience`, until no older open process of the
/// organization conflicts with `mine`.
pub(crate) async fn wait(
    pool: &Pool,
    cache: &Footprints,
    meta: &BatchMeta,
    mine: &Footprint,
    patience: Duration,
) -> Result<Turn, WorkerError> {
    let mut blockers = blockers(pool, cache, meta, mine).await?;
    if blockers.is_empty() {
        return Ok(Turn::Go);
    }
    let started = Instant::now();
    tracing::debug!(waiting_for = ?blockers, "waiting for older batches on the same records");
    let mut report = crate::waits::Report::new(patience);
    let mut pause = FIRST_PAUSE;
    while !blockers.is_empty() {
        let waited = started.elapsed();
        report.check(pool, meta, &blockers, waited).await;
        if waited >= patience {
            tracing::info!(
                waiting_for = ?blockers,
                "older batches on the same records are not being applied; giving way"
            );
            return Ok(Turn::GiveWay);
        }
        tokio::time::sleep(pause).await;
        pause = next_pause(pause, waited);
        let client = pool.get().await?;
        blockers = order::still_open(&client, meta.org_id, &blockers).await?;
    }
    metrics::histogram!("objectsync_order_wait_seconds").record(started.elapsed().as_secs_f64());
    Ok(Turn::Go)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_come_quickly_at_first_then_slow_down() {
        let ms = Duration::from_millis;
        let mut pause = FIRST_PAUSE;
        let mut pauses = Vec::new();
        for waited in [0, 1, 3, 7, 12, 400, 499] {
            pause = next_pause(pause, ms(waited));
            pauses.push(pause);
        }
        assert_eq!(pauses, [ms(2), ms(4), ms(5), ms(5), ms(5), ms(5), ms(5)]);
        for waited in [500, 510, 530] {
            pause = next_pause(pause, ms(waited));
        }
        assert_eq!(pause, ms(40));
        for _ in 0..5 {
            pause = next_pause(pause, ms(2_000));
        }
        assert_eq!(pause, SLOW_PAUSE);
    }
}
