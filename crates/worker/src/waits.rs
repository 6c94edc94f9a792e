//! Saying what a batch waits for: the hooks `gate` and `giveway` call, which
//! write to the process (`objectsync_store::waits`), log and count.
//!
//! Almost every wait is one batch long — the older batch is being applied
//! right now — and says nothing: a wait is reported only once it has lasted
//! [`REPORT_AFTER`] (or when the batch gives its place back, if that comes
//! sooner), once per delivery. So the common case costs no statement.

use std::time::Duration;

use deadpool_postgres::Pool;
use objectsync_model::{BatchMeta, ProcessId};
use objectsync_store::waits;

/// A wait this long is no longer "the batch before is being applied".
const REPORT_AFTER: Duration = Duration::from_secs(1);

/// The report of one wait (one delivery's).
pub(crate) struct Report {
    after: Duration,
    done: bool,
}

impl Report {
    /// For a wait that gives way after `patience`.
    pub(crate) fn new(patience: Duration) -> Self {
        Self {
            after: REPORT_AFTER.min(patience),
            done: false,
        }
    }

    /// Called at each check of the wait, with the processes still in the
    /// way: once the wait has lasted long enough, notes the oldest of them
    /// on the waiting process, logs it and counts it (once).
    pub(crate) async fn check(
        &mut self,
        pool: &Pool,
        meta: &BatchMeta,
        blockers: &[ProcessId],
        waited: Duration,
    ) {
        if self.done || waited < self.after {
            return;
        }
        let Some(&oldest) = blockers.iter().min() else {
            return;
        };
        self.done = true;
        metrics::counter!("objectsync_batches_blocked_total").increment(1);
        tracing::info!(
            waiting_for = oldest.get(),
            blockers = blockers.len(),
            waited_ms = waited.as_millis() as u64,
            "waiting for process {oldest}, accepted earlier on the same records, which is not \
             applied yet"
        );
        let noted = match pool.get().await {
            Ok(client) => waits::note_waiting(&client, meta.org_id, meta.process_id, oldest)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = noted {
            tracing::debug!(%error, "could not note what the batch waits for");
        }
    }
}

/// Notes that a copy of the batch's message has just gone to the end of
/// its queue. Called after the broker confirmed the copy, so the time is
/// never earlier than the copy's place in the queue.
pub(crate) async fn gave_way(pool: &Pool, meta: &BatchMeta) {
    let noted = match pool.get().await {
        Ok(client) => waits::note_gave_way(&client, meta.org_id, meta.process_id)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = noted {
        tracing::debug!(%error, "could not note that the batch gave way");
    }
}
