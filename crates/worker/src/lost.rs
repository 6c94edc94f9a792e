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

use crate::ctx::Ctx;
use crate::error::WorkerError;

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

/// `86400` → "24 h", `600` → "10 min", `45` → "45 s".
pub(crate) fn human(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(super::human(86_400), "24 h");
        assert_eq!(super::human(600), "10 min");
        assert_eq!(super::human(45), "45 s");
    }
}
