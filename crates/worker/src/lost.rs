//! Failing a process whose message is provably lost, sooner than the
//! stale-process monitor's 24 hours, because later batches of its
//! organization wait for it (acceptance order) and would wait as long.
//!
//! The rule, with W = `worker.fail_lost_after_secs` (default 5 minutes):
//! a process is failed when, for W, it has had no delivery and a later
//! batch has waited for it; a copy of that batch, put at the end of its
//! queue — the process's own queue — (it gave its place back) within the
//! last W/2 and after the
//! process's last delivery, has been delivered since — so every message
//! that was waiting in that queue then has been delivered, and this one
//! was not among them; no live worker lists it among the batches it holds
//! (received and not acknowledged: prefetched, waiting or applying); and no
//! worker has stopped beating within W without saying so (one that
//! crashed may still hold it until the broker notices).
//!
//! A worker that receives the message after all finds the process final:
//! it acknowledges the message and applies nothing.

use std::collections::HashSet;
use std::time::Duration;

use objectsync_store::{GenericClient, waits, workers};

use crate::consumer::Ctx;
use crate::error::WorkerError;
use crate::monitor::human;

/// Fails the processes whose message is lost, in the monitor's transaction
/// (which holds the sweep lock).
pub(crate) async fn fail(ctx: &Ctx, tx: &impl GenericClient) -> Result<(), WorkerError> {
    let secs = ctx.settings.fail_lost_after_secs;
    if secs == 0 {
        return Ok(());
    }
    let after = Duration::from_secs(secs);
    let candidates = waits::lost_candidates(tx, after).await?;
    if candidates.is_empty() {
        return Ok(());
    }
    let live_within =
        Duration::from_secs(ctx.settings.heartbeat_secs.max(1)) * workers::MISSED_BEATS;
    let silent = workers::gone_silent(tx, live_within, after).await?;
    if silent > 0 {
        tracing::info!(
            workers = silent,
            "a worker stopped beating recently and may still hold a batch others wait for; \
             not failing any as lost yet"
        );
        return Ok(());
    }
    let held: HashSet<_> = workers::live(tx, live_within)
        .await?
        .iter()
        .flat_map(|w| w.holding.iter().map(|h| (h.org_id, h.process_id)))
        .collect();
    for p in candidates {
        if held.contains(&(p.org_id, p.id)) {
            tracing::debug!(
                org_id = p.org_id.get(),
                process_id = p.id.get(),
                "a worker holds the batch others wait for; not lost"
            );
            continue;
        }
        let reason = format!(
            "its message is lost: no worker received it for {} while {} later batch(es) of the \
             organization waited for it, and neither the queue nor any worker holds it; nothing \
             was applied, so send the batch again",
            human(secs),
            p.waiters
        );
        if waits::fail_lost(tx, p.org_id, p.id, after, &reason).await? {
            tracing::error!(
                org_id = p.org_id.get(),
                process_id = p.id.get(),
                status = %p.status,
                deliveries = p.deliveries,
                waiters = p.waiters,
                waited_since = %p.waited_since,
                last_seen = %p.last_seen,
                %reason,
                "lost process failed"
            );
            metrics::counter!("objectsync_processes_failed_total", "reason" => "lost").increment(1);
        }
    }
    Ok(())
}
