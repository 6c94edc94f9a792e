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
//! (`defer`) instead of holding a prefetch slot the older one needs.

use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use objectsync_model::wire::Footprint;
use objectsync_model::{BatchMeta, ProcessId};
use objectsync_store::order;

use crate::error::WorkerError;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Every conflicting older process is final: apply now.
    Go,
    /// Still waiting after the allowed time: give the place back.
    GiveWay,
}

/// Waits, for at most `patience`, until no older open process of the
/// organization conflicts with `mine`.
pub(crate) async fn wait(
    pool: &Pool,
    meta: &BatchMeta,
    mine: &Footprint,
    patience: Duration,
) -> Result<Turn, WorkerError> {
    let (org, pid) = (meta.org_id, meta.process_id);
    let mut blockers: Vec<ProcessId> = {
        let client = pool.get().await?;
        order::barrier(&client, org).await?;
        order::older_open(&client, org, pid)
            .await?
            .into_iter()
            .filter(|(_, theirs)| theirs.conflicts_with(mine))
            .map(|(id, _)| id)
            .collect()
    };
    if blockers.is_empty() {
        return Ok(Turn::Go);
    }
    let started = Instant::now();
    tracing::debug!(waiting_for = ?blockers, "waiting for older batches on the same records");
    let mut pause = Duration::from_millis(5);
    while !blockers.is_empty() {
        if started.elapsed() >= patience {
            tracing::info!(
                waiting_for = ?blockers,
                "older batches on the same records are not being applied; giving way"
            );
            return Ok(Turn::GiveWay);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
        let client = pool.get().await?;
        blockers = order::still_open(&client, org, &blockers).await?;
    }
    metrics::histogram!("objectsync_order_wait_seconds").record(started.elapsed().as_secs_f64());
    Ok(Turn::Go)
}
