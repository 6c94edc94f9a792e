//! The stale-process monitor: every worker runs it, one at a time does the
//! reporting (under an advisory lock), all of them export the gauges.
//!
//! A process stale for `worker.stale_after_secs` (default 10 minutes without
//! a delivery) is logged once and counted; one stale for
//! `worker.fail_stale_after_secs` (default 24 hours) is failed. Stale
//! processes are not failed sooner because a backlog, or workers stopped for
//! maintenance, also leaves processes undelivered for a while, and those
//! batches are still on the queue and will be applied: failing them would
//! make their producers send again what was never lost.
//!
//! Sooner than that, a process is failed when its message is provably lost
//! (`lost`): later batches that wait for it went round their queue without
//! meeting it, and no worker holds it.

use std::sync::Arc;
use std::time::Duration;

use objectsync_store::{liveness, waits};
use tokio_util::sync::CancellationToken;

use crate::ctx::Ctx;
use crate::error::WorkerError;
use crate::lost::human;

/// Sweeps until `cancel` fires.
pub(crate) async fn run(ctx: Arc<Ctx>, cancel: CancellationToken) {
    let stale_after = Duration::from_secs(ctx.settings.stale_after_secs.max(1));
    let quickest = match ctx.settings.fail_lost_after_secs {
        0 => stale_after,
        lost => stale_after.min(Duration::from_secs(lost)),
    };
    let every = (quickest / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = sweep(&ctx, stale_after).await {
            tracing::debug!(error = %e, "stale-process sweep skipped");
        }
        ctx.ended();
    }
}

#[tracing::instrument(skip_all, name = "stale_sweep")]
async fn sweep(ctx: &Ctx, stale_after: Duration) -> Result<(), WorkerError> {
    let mut client = ctx.monitors.get().await?;
    let open = liveness::count(&client, stale_after).await?;
    metrics::gauge!("objectsync_processes_stale").set(open as f64);
    let blocked = waits::blocked_count(&client).await?;
    metrics::gauge!("objectsync_processes_blocked").set(blocked as f64);
    let tx = client.transaction().await?;
    if !liveness::try_lock_sweep(&tx).await? {
        return Ok(());
    }
    for p in liveness::mark_newly_stale(&tx, stale_after).await? {
        metrics::counter!("objectsync_processes_stale_total").increment(1);
        tracing::warn!(
            org_id = p.org_id.get(),
            process_id = p.id.get(),
            status = %p.status,
            deliveries = p.deliveries,
            created_at = %p.created_at,
            last_delivery_at = ?p.last_delivery_at,
            last_error = ?p.last_error,
            "process open with no delivery for {}s; list them with `objectsync-ingest admin stale-processes`",
            stale_after.as_secs()
        );
    }
    let fail_after = ctx.settings.fail_stale_after_secs;
    if fail_after > 0 {
        let reason = format!(
            "no worker applied the batch within {} after its last delivery; its message \
             was lost or never consumed, so send the batch again",
            human(fail_after)
        );
        let failed = liveness::fail_stale(&tx, Duration::from_secs(fail_after), &reason).await?;
        for p in &failed {
            tracing::error!(org_id = p.org_id.get(), process_id = p.id.get(), %reason, "stale process failed");
        }
        if !failed.is_empty() {
            metrics::counter!("objectsync_processes_failed_total", "reason" => "stale")
                .increment(failed.len() as u64);
        }
    }
    crate::lost::fail(ctx, &tx).await?;
    tx.commit().await?;
    Ok(())
}
