//! The webhook sender: makes the deliveries that are due
//! (`webhook_deliveries`), each in a task of its own, and writes what each
//! attempt came to — delivered (the row goes), retry with backoff, or
//! failed once its retries are over.
//!
//! Every worker runs one. It takes deliveries per endpoint, at most
//! `webhooks.per_endpoint` in flight to one endpoint and
//! `webhooks.max_in_flight` in all: a slow or dead endpoint holds its own
//! few slots for up to the timeout each, and every other endpoint's
//! deliveries go on beside it. It looks for due deliveries as soon as its
//! worker ended a process, every `events.poll_ms`, and when an attempt
//! finishes if its last look left due deliveries behind for want of slots.

mod send;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use objectsync_store::StoreError;
use objectsync_store::deliveries::{self, Taken};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ctx::Ctx;
use send::Outcome;

/// Attempts in flight, per webhook.
#[derive(Default)]
struct InFlight(Mutex<HashMap<i64, i32>>);

impl InFlight {
    fn busy(&self) -> (Vec<(i64, i32)>, i32) {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (
            map.iter().map(|(k, v)| (*k, *v)).collect(),
            map.values().sum(),
        )
    }

    /// Whether some endpoint has `slots` attempts or more in flight.
    fn any_full(&self, slots: i32) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.values().any(|n| *n >= slots)
    }

    fn add(&self, webhook: i64, n: i32) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let left = {
            let e = map.entry(webhook).or_default();
            *e += n;
            *e
        };
        if left <= 0 {
            map.remove(&webhook);
        }
    }
}

/// Delivers until `stop` fires; attempts in flight then get the timeout to
/// finish (an attempt cut short is made again by whichever worker takes it
/// after its lease, under the same `webhook-id`).
pub(crate) async fn run(ctx: Arc<Ctx>, stop: CancellationToken) {
    let client = match send::client(&ctx.webhooks) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; no webhooks are delivered by this worker");
            return;
        }
    };
    let in_flight = Arc::new(InFlight::default());
    let done = Arc::new(tokio::sync::Notify::new());
    let poll = Duration::from_millis(ctx.events.poll_ms.max(10));
    let mut tasks = JoinSet::new();
    let mut quiet_errors = 0u32;
    // Whether the last look was cut short by the slots, so that more may be
    // due: only then does a finished attempt call for another look. Each
    // look is a statement PostgreSQL plans afresh (about 0.7 ms of its CPU
    // here); looking after every attempt and again after every find tripled
    // the sender's cost per delivery.
    let mut capped = true;
    let mut wake = Wake::Look;
    while !stop.is_cancelled() {
        while tasks.try_join_next().is_some() {}
        if wake == Wake::AttemptDone && !capped {
            wake = wait(&ctx, &stop, &done, poll).await;
            continue;
        }
        let (busy, total) = in_flight.busy();
        let free = i64::from(ctx.webhooks.max_in_flight.max(1)) - i64::from(total);
        let taken = match take(&ctx, &busy, free).await {
            Ok(t) => {
                quiet_errors = 0;
                t
            }
            Err(e) => {
                quiet_errors += 1;
                if quiet_errors == 1 || quiet_errors.is_power_of_two() {
                    tracing::warn!(error = %e, "could not look for webhook deliveries");
                }
                Vec::new()
            }
        };
        let found = taken.len();
        for d in taken {
            in_flight.add(d.webhook_id, 1);
            let (ctx, client, in_flight, done) =
                (ctx.clone(), client.clone(), in_flight.clone(), done.clone());
            tasks.spawn(async move {
                deliver(&ctx, &client, &d).await;
                in_flight.add(d.webhook_id, -1);
                done.notify_one();
            });
        }
        capped = free > 0 && (found as i64 >= free || in_flight.any_full(per_endpoint(&ctx)));
        wake = wait(&ctx, &stop, &done, poll).await;
    }
    let finish = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(ctx.webhooks.timeout(), finish)
        .await
        .is_err()
    {
        tasks.shutdown().await;
    }
}

/// What ended a wait of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// A process ended here, the poll came round, or the sender stops:
    /// look for due deliveries.
    Look,
    /// An attempt finished: look only if the last look was capped.
    AttemptDone,
}

async fn wait(
    ctx: &Ctx,
    stop: &CancellationToken,
    done: &tokio::sync::Notify,
    poll: Duration,
) -> Wake {
    tokio::select! {
        () = stop.cancelled() => Wake::Look,
        () = ctx.deliveries_ready.notified() => Wake::Look,
        () = done.notified() => Wake::AttemptDone,
        () = tokio::time::sleep(poll) => Wake::Look,
    }
}

/// Attempts one endpoint may have in flight.
fn per_endpoint(ctx: &Ctx) -> i32 {
    i32::try_from(ctx.webhooks.per_endpoint.max(1)).unwrap_or(i32::MAX)
}

/// Takes the deliveries that are due and fit in the `free` slots, with
/// `busy` the attempts in flight per webhook.
async fn take(ctx: &Ctx, busy: &[(i64, i32)], free: i64) -> Result<Vec<Taken>, StoreError> {
    if free <= 0 {
        return Ok(Vec::new());
    }
    let client = ctx.events_pool.get().await?;
    let per_endpoint = per_endpoint(ctx);
    // The lease outlasts an attempt: the timeout, and time to write its end.
    let lease = ctx.webhooks.timeout() + Duration::from_secs(30);
    let retry_for = Duration::from_secs(ctx.webhooks.retry_for_secs);
    deliveries::take(&client, per_endpoint, busy, free, lease, retry_for).await
}

/// Makes one attempt of `d` and writes what it came to.
#[tracing::instrument(skip_all, name = "webhook", fields(
    webhook_id = d.webhook_id, process_id = d.process_id.get(), org_id = d.org_id.get(),
    attempt = d.attempts))]
async fn deliver(ctx: &Ctx, client: &reqwest::Client, d: &Taken) {
    let outcome = send::attempt(client, &ctx.webhooks, d).await;
    if let Some(ended) = d.ended_at
        && matches!(outcome, Outcome::Delivered)
    {
        let lag = (chrono::Utc::now() - ended).to_std().unwrap_or_default();
        metrics::histogram!("objectsync_webhook_delivery_lag_seconds").record(lag.as_secs_f64());
    }
    let label = match &outcome {
        Outcome::Delivered => "delivered",
        Outcome::Retry(_) => "retry",
        Outcome::GiveUp(_) => "failed",
    };
    metrics::counter!("objectsync_webhook_attempts_total", "outcome" => label).increment(1);
    if let Err(e) = record(ctx, d, &outcome).await {
        // The lease runs out and the delivery is attempted again.
        tracing::warn!(error = %e, "could not record a webhook attempt");
    }
}

/// Writes what the attempt of `d` came to.
async fn record(ctx: &Ctx, d: &Taken, outcome: &Outcome) -> Result<(), StoreError> {
    let client = ctx.events_pool.get().await?;
    match outcome {
        Outcome::Delivered => deliveries::delivered(&client, d.id).await,
        Outcome::Retry(error) => {
            let attempts = u32::try_from(d.attempts).unwrap_or(0);
            let jitter = f64::from(getrandom::u32().unwrap_or(0)) / f64::from(u32::MAX);
            let delay = ctx.webhooks.retry_delay(attempts, jitter);
            if deliveries::attempt_failed(&client, d.id, error, delay).await? {
                tracing::warn!(%error, url = %d.url, "webhook delivery failed: no more retries");
            } else {
                tracing::info!(%error, retry_in_ms = delay.as_millis() as u64, "webhook delivery will be retried");
            }
            Ok(())
        }
        Outcome::GiveUp(error) => {
            tracing::warn!(%error, url = %d.url, "webhook delivery failed");
            deliveries::give_up(&client, d.id, error).await
        }
    }
}
