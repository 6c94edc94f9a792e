//! The retention sweeper: every worker runs it every
//! `retention.sweep_secs`, one at a time across replicas (a session
//! advisory lock; the others skip that round). It keeps partitions of
//! `processes` ahead of the ids being drawn and drops the expired ones
//! (`partitions`, `expiry`; as the schema's owner or as the app role), and
//! removes, a bounded number per statement, dead
//! letters resolved long ago, webhook deliveries failed long ago,
//! idempotency keys past their 24 hours and the rows of workers gone for
//! `retention.workers_secs`.
//!
//! What it removed is counted in `objectsync_retention_removed_total`
//! (label `what`), and each dropped partition is logged.

mod expiry;
mod partitions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Client;
use objectsync_infra::settings::RetentionSettings;
use objectsync_store::{dead_letters, deliveries, idempotency, workers};
use tokio_util::sync::CancellationToken;

use crate::ctx::Ctx;
use crate::error::WorkerError;

pub(crate) use partitions::Sample;

/// Key of the session advisory lock of the sweeper ("objret").
const LOCK: i64 = 0x006f_626a_7265_7400;

/// Rows one delete statement removes at most: each statement holds its row
/// locks for a moment only, and its cost does not depend on the table.
const BATCH: i64 = 10_000;

/// Statements of [`BATCH`] rows per table and sweep, at most; the rest
/// waits for the next sweep.
const MAX_BATCHES: u32 = 100;

/// Sweeps until `cancel` fires, the first time at once.
pub(crate) async fn run(ctx: Arc<Ctx>, cancel: CancellationToken) {
    let every = Duration::from_secs(ctx.retention.sweep_secs.max(1));
    let mut last = None;
    loop {
        if let Err(e) = sweep(&ctx, &mut last).await {
            tracing::warn!(error = %e, "retention sweep stopped; the next one goes on from there");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// One sweep, if no other worker's is running.
#[tracing::instrument(skip_all, name = "retention_sweep")]
async fn sweep(ctx: &Ctx, last: &mut Option<Sample>) -> Result<(), WorkerError> {
    let mut client = ctx.sweeper.get().await?;
    let citus = ctx.engine.get() == Some(&objectsync_store::Engine::Citus);
    let result = locked(&mut client, &ctx.retention, citus, last).await;
    // The lock belongs to the session: closing the connection releases it
    // whatever happened (an unlock could itself fail or time out).
    drop(Client::take(client));
    result
}

async fn locked(
    client: &mut Client,
    s: &RetentionSettings,
    citus: bool,
    last: &mut Option<Sample>,
) -> Result<(), WorkerError> {
    let locked: bool = client
        .query_one("select pg_try_advisory_lock($1)", &[&LOCK])
        .await?
        .get(0);
    if !locked {
        return Ok(());
    }
    let started = Instant::now();
    partitions::sweep(client, s, citus, last).await?;
    rows(client, s).await?;
    metrics::histogram!("objectsync_retention_sweep_seconds")
        .record(started.elapsed().as_secs_f64());
    Ok(())
}

/// Dead letters, failed webhook deliveries, idempotency keys and worker
/// rows past their time.
async fn rows(client: &Client, s: &RetentionSettings) -> Result<(), WorkerError> {
    if s.dead_letters_secs > 0 {
        let after = Duration::from_secs(s.dead_letters_secs);
        let n = batched(|| dead_letters::sweep_resolved(client, after, BATCH)).await?;
        removed("dead_letters", n);
    }
    if s.failed_deliveries_secs > 0 {
        let after = Duration::from_secs(s.failed_deliveries_secs);
        let n = batched(|| deliveries::sweep_failed(client, after, BATCH)).await?;
        removed("failed_deliveries", n);
    }
    let n = batched(|| idempotency::sweep(client, BATCH)).await?;
    removed("idempotency_keys", n);
    let n = workers::sweep(client, Duration::from_secs(s.workers_secs)).await?;
    removed("workers", n);
    Ok(())
}

/// Runs `sweep` (one statement removing [`BATCH`] rows at most) until it
/// removes fewer, [`MAX_BATCHES`] times at most; how many it removed.
async fn batched<F, Fut>(mut sweep: F) -> Result<u64, WorkerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, objectsync_store::StoreError>>,
{
    let mut n = 0;
    for _ in 0..MAX_BATCHES {
        let removed = sweep().await?;
        n += removed;
        if removed < BATCH as u64 {
            break;
        }
    }
    Ok(n)
}

/// Counts and logs what a sweep removed of `what`.
fn removed(what: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!("objectsync_retention_removed_total", "what" => what).increment(n);
        tracing::info!(what, rows = n, "expired rows removed");
    }
}
