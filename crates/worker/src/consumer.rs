//! Consuming batches: an explicit reconnect loop around one consumer
//! channel, with up to `prefetch` batches applied at once.
//!
//! Each delivery ends in exactly one of:
//! - `ack` — applied, or found already applied;
//! - `nack` with requeue — a transient failure outlasted this delivery's
//!   retry budget; the broker counts the delivery and redelivers;
//! - `reject` without requeue — permanent failure, or the last allowed
//!   delivery failed; the broker dead-letters it and the process is marked
//!   `failed`.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use deadpool_postgres::Pool;
use std::panic::AssertUnwindSafe;

use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use objectsync_infra::settings::WorkerSettings;
use objectsync_infra::{Broker, message};
use objectsync_model::{BatchMeta, Job};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::apply::{self, Handled};
use crate::error::WorkerError;
use crate::headers::previous_deliveries;
use objectsync_store::processes;

/// What every delivery handler needs.
pub(crate) struct Ctx {
    /// Sessions that apply batches (apply timeouts).
    pub(crate) pool: Pool,
    /// Sessions of the monitors, dead-letter tracker and heartbeat, with
    /// their own timeouts and out of the way of batches.
    pub(crate) monitors: Pool,
    pub(crate) broker: Arc<Broker>,
    pub(crate) settings: WorkerSettings,
    /// The confirm-mode channel batches that give way are republished on.
    pub(crate) republish: tokio::sync::Mutex<Option<lapin::Channel>>,
    /// Footprints of other batches, and the slots batches are applied in.
    pub(crate) local: apply::Local,
}

impl Ctx {
    fn apply_config(&self, express: bool) -> apply::ApplyConfig {
        apply::ApplyConfig {
            express,
            max_links_per_type: self.settings.max_links_per_type,
            order_wait: Duration::from_millis(self.settings.order_wait_ms),
        }
    }

    fn max_deliveries(&self) -> u32 {
        self.broker.topology().max_deliveries
    }

    /// Backoff for transient failures within one delivery: exponential with
    /// jitter, bounded in total by the retry budget.
    fn retry_policy(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(5))
            .with_total_delay(Some(Duration::from_millis(self.settings.retry_budget_ms)))
            .without_max_times()
    }
}

/// How a consuming session ended.
pub(crate) enum Session {
    /// `cancel` fired and the session wound down.
    Stopped,
    /// The broker went away; `consumed` says whether the session got as far
    /// as consuming (which resets the reconnect backoff).
    Lost { error: lapin::Error, consumed: bool },
}

/// The pauses between reconnects: from 250 ms, doubling, up to 10 s, for as
/// long as it takes.
const RECONNECT_BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(250))
    .with_max_delay(RECONNECT_MAX_PAUSE)
    .without_max_times();
const RECONNECT_MAX_PAUSE: Duration = Duration::from_secs(10);

/// Runs `session` again and again, with a growing pause after each broker
/// failure, until `cancel` fires: the explicit reconnect loop that lapin's
/// own recovery is not relied on for.
pub(crate) async fn reconnecting<F, Fut>(what: &str, cancel: &CancellationToken, mut session: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Session>,
{
    let mut pauses = RECONNECT_BACKOFF.build();
    while !cancel.is_cancelled() {
        match session().await {
            Session::Stopped => break,
            Session::Lost { error, consumed } => {
                if consumed {
                    pauses = RECONNECT_BACKOFF.build();
                }
                let delay = pauses.next().unwrap_or(RECONNECT_MAX_PAUSE);
                tracing::warn!(%error, retry_in = ?delay, "{what} lost the broker");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Consumes batches until `cancel` fires.
pub(crate) async fn run(ctx: Arc<Ctx>, cancel: CancellationToken) {
    reconnecting("batch consumer", &cancel, || consume(&ctx, &cancel)).await;
}

/// Consumes every batch queue on one channel, each with a prefetch of
/// `worker.prefetch`, so that a backlog in one queue (the bulk queue of an
/// organization's) never stands between the worker and a batch in another,
/// the express queue above all; how many batches are applied at once is
/// bounded separately, by as many slots (see `apply::Local`), which an
/// express batch queues for behind the batches already holding them and
/// one bulk batch at most.
async fn consume(ctx: &Arc<Ctx>, cancel: &CancellationToken) -> Session {
    let topology = ctx.broker.topology();
    let queues: Vec<&str> = topology.batch_queues().map(String::as_str).collect();
    match subscribe_all(ctx, &queues, ctx.settings.prefetch).await {
        Ok((channel, consumers)) => drain(ctx, cancel, channel, consumers).await,
        Err(error) => Session::Lost {
            error,
            consumed: false,
        },
    }
}

/// Opens a channel on the live connection and consumes each of `queues`
/// with `prefetch` unacknowledged deliveries at most.
async fn subscribe_all(
    ctx: &Ctx,
    queues: &[&str],
    prefetch: u16,
) -> lapin::Result<(lapin::Channel, Vec<lapin::Consumer>)> {
    let conn = ctx.broker.connection().await?;
    let channel = conn.create_channel().await?;
    channel
        .basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await?;
    let mut consumers = Vec::with_capacity(queues.len());
    for queue in queues {
        consumers.push(
            channel
                .basic_consume(
                    (*queue).into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?,
        );
    }
    tracing::info!(?queues, prefetch, "consuming");
    Ok((channel, consumers))
}

/// Opens a channel on the live connection and consumes `queue` with
/// `prefetch` unacknowledged deliveries at most.
pub(crate) async fn subscribe(
    ctx: &Ctx,
    queue: &str,
    prefetch: u16,
) -> lapin::Result<(lapin::Channel, lapin::Consumer)> {
    let (channel, mut consumers) = subscribe_all(ctx, &[queue], prefetch).await?;
    let consumer = consumers.pop().expect("one consumer per queue");
    Ok((channel, consumer))
}

/// Hands deliveries to tasks until `cancel` fires or the broker goes away,
/// then lets in-flight batches finish within the grace period.
async fn drain(
    ctx: &Arc<Ctx>,
    cancel: &CancellationToken,
    channel: lapin::Channel,
    consumers: Vec<lapin::Consumer>,
) -> Session {
    let tags: Vec<_> = consumers.iter().map(|c| c.tag()).collect();
    let mut deliveries = futures_util::stream::select_all(consumers);
    let mut tasks = JoinSet::new();
    let outcome = loop {
        tokio::select! {
            () = cancel.cancelled() => break Ok(()),
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => {
                    tasks.spawn(handle_delivery(ctx.clone(), delivery, cancel.clone()));
                }
                Some(Err(e)) => break Err(e),
                None => break Err(lapin::Error::from(std::io::Error::other("consumer stream ended"))),
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    };
    if outcome.is_ok() {
        // Stop new deliveries; those prefetched but not started are
        // requeued by the broker when the channel closes.
        for tag in tags {
            let _ = channel
                .basic_cancel(tag, BasicCancelOptions::default())
                .await;
        }
    }
    let grace = Duration::from_secs(ctx.settings.shutdown_grace_secs);
    let in_flight = tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "waiting for in-flight batches");
    }
    if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("in-flight batches did not finish in time; the broker will redeliver them");
        tasks.abort_all();
    }
    let _ = channel.close(200, "OK".into()).await;
    match outcome {
        Ok(()) => Session::Stopped,
        Err(error) => Session::Lost {
            error,
            consumed: true,
        },
    }
}

async fn handle_delivery(ctx: Arc<Ctx>, delivery: Delivery, cancel: CancellationToken) {
    let attempt = previous_deliveries(&delivery.properties) + 1;
    let meta = match message::read_meta(&delivery.properties) {
        Ok(meta) => meta,
        Err(e) => {
            crate::unreadable::fail(&ctx, &e, &delivery.data).await;
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            batch_outcome("dead_lettered");
            return;
        }
    };
    // Listed as held until settled, so that no monitor takes its process
    // for one whose message is lost.
    let _held = ctx.local.hold(meta.org_id, meta.process_id);
    let span = tracing::info_span!(
        "batch",
        process_id = meta.process_id.get(),
        org_id = meta.org_id.get(),
        object_type = %meta.object_type,
        request_id = meta.request_id.as_deref().unwrap_or(""),
        attempt,
    );
    let settled = AssertUnwindSafe(settle(&ctx, &delivery, &meta, attempt, &cancel))
        .catch_unwind()
        .instrument(span)
        .await;
    if settled.is_err() {
        // A bug, not a state of the world: retrying would panic again.
        let reason = "the worker panicked while applying the batch; see its log";
        tracing::error!(
            process_id = meta.process_id.get(),
            "{reason}; dead-lettering it"
        );
        if let Ok(client) = ctx.pool.get().await {
            let _ = processes::fail(&client, meta.org_id, meta.process_id, reason).await;
        }
        let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
        metrics::counter!("objectsync_processes_failed_total", "reason" => "panic").increment(1);
    }
}

async fn settle(
    ctx: &Ctx,
    delivery: &Delivery,
    meta: &BatchMeta,
    attempt: u32,
    cancel: &CancellationToken,
) {
    let started = std::time::Instant::now();
    if attempt == 1 {
        let lag = (chrono::Utc::now() - meta.enqueued_at)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!("objectsync_queue_lag_seconds").record(lag.as_secs_f64());
    }
    // The body is read once, with the reader ingest checked it with; only a
    // message that did not come from ingest (or came damaged) fails here.
    let result = match Job::decode(meta.kind, &delivery.data) {
        Ok(job) => {
            let express = delivery.routing_key.as_str() == ctx.broker.topology().express;
            apply_with_retries(ctx, meta, &job, attempt, express, cancel).await
        }
        Err(e) => Err(WorkerError::Fatal(format!(
            "the message body cannot be read: {}",
            e.message
        ))),
    };
    let (org, pid) = (meta.org_id, meta.process_id);
    match result {
        Ok(Handled::Applied(counts)) => {
            let _ = delivery.ack(BasicAckOptions::default()).await;
            record_applied(&counts, started.elapsed());
            tracing::info!(
                records = counts.processed,
                created = counts.created,
                updated = counts.updated,
                deleted = counts.deleted,
                failed = counts.failed,
                ms = started.elapsed().as_millis() as u64,
                "batch applied"
            );
        }
        Ok(Handled::AlreadyDone) => {
            let _ = delivery.ack(BasicAckOptions::default()).await;
            batch_outcome("already_done");
            tracing::info!("batch already processed; acknowledged again");
        }
        Ok(Handled::GaveWay) => {
            crate::giveway::give_way(ctx, delivery, meta, attempt).await;
            batch_outcome("gave_way");
        }
        Ok(Handled::Misnamed(reason)) => {
            tracing::error!(%reason, "dead-lettering a batch whose headers name another organization");
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            batch_outcome("dead_lettered");
            metrics::counter!("objectsync_processes_failed_total", "reason" => "misnamed")
                .increment(1);
        }
        Ok(Handled::Orphan) => {
            let _ = delivery.ack(BasicAckOptions::default()).await;
            batch_outcome("orphan");
            tracing::warn!(
                "dropped a batch whose request was rolled back after publishing (its client got an error)"
            );
        }
        Err(e) if e.is_transient() && (attempt < ctx.max_deliveries() || cancel.is_cancelled()) => {
            let reason = e.to_string();
            tracing::warn!(%reason, "giving the batch back to the broker");
            if let Ok(client) = ctx.pool.get().await {
                let _ = processes::record_attempt_error(&client, org, pid, &reason).await;
            }
            let _ = delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
            batch_outcome("requeued");
        }
        Err(e) => {
            let reason = if e.is_transient() {
                format!("gave up after {attempt} deliveries: {e}")
            } else {
                e.to_string()
            };
            tracing::error!(%reason, "dead-lettering the batch");
            // If the database is what failed, the dead-letter tracker marks
            // the process failed once it is back.
            if let Ok(client) = ctx.pool.get().await {
                let _ = processes::fail(&client, org, pid, &reason).await;
            }
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            batch_outcome("dead_lettered");
            let kind = if e.is_transient() {
                "retries_exhausted"
            } else {
                "permanent"
            };
            metrics::counter!("objectsync_processes_failed_total", "reason" => kind).increment(1);
        }
    }
}

/// Applies `job`, retrying transient failures with backoff within the retry
/// budget. On shutdown, a batch waiting to retry is handed back at once
/// instead of holding the worker until its budget runs out.
async fn apply_with_retries(
    ctx: &Ctx,
    meta: &BatchMeta,
    job: &Job<'_>,
    attempt: u32,
    express: bool,
    cancel: &CancellationToken,
) -> Result<Handled, WorkerError> {
    let stop = cancel.clone();
    (|| {
        apply::handle(
            &ctx.pool,
            &ctx.local,
            meta,
            job,
            attempt,
            ctx.apply_config(express),
        )
    })
    .retry(ctx.retry_policy())
    .sleep(move |wait| {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => {}
            }
        }
    })
    .when(|e| e.is_transient() && !cancel.is_cancelled())
    .notify(|e, after| {
        metrics::counter!("objectsync_batch_retries_total").increment(1);
        match e {
            WorkerError::NotYet(_) => tracing::debug!(error = %e, retry_in = ?after, "waiting"),
            _ => tracing::warn!(error = %e, retry_in = ?after, "transient failure"),
        }
    })
    .await
}

fn batch_outcome(outcome: &'static str) {
    metrics::counter!("objectsync_batches_total", "outcome" => outcome).increment(1);
}

fn record_applied(counts: &processes::Counts, took: Duration) {
    batch_outcome("applied");
    metrics::histogram!("objectsync_batch_apply_seconds").record(took.as_secs_f64());
    for (outcome, n) in [
        ("created", counts.created),
        ("updated", counts.updated),
        ("deleted", counts.deleted),
        ("failed", counts.failed),
    ] {
        if n > 0 {
            metrics::counter!("objectsync_records_total", "outcome" => outcome)
                .increment(u64::try_from(n).unwrap_or(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_pauses_double_from_a_quarter_second_to_ten_seconds_and_go_on() {
        // In whole milliseconds: backon multiplies in f32, off by a few ns.
        let pauses: Vec<u128> = RECONNECT_BACKOFF
            .build()
            .take(9)
            .map(|p| p.as_millis())
            .collect();
        assert_eq!(
            pauses,
            [250, 500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]
        );
        assert!(
            RECONNECT_BACKOFF.build().nth(1_000).is_some(),
            "never gives up"
        );
    }
}
