//! Settling a delivery: applying its batch with retries, then the one
//! answer the broker gets for it (see the table at the top of `consumer`).

use std::time::Duration;

use backon::Retryable;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use objectsync_model::{BatchMeta, Job};
use objectsync_store::processes;
use tokio_util::sync::CancellationToken;

use crate::apply::{self, Handled};
use crate::ctx::Ctx;
use crate::error::WorkerError;

/// Applies a delivered batch and answers the broker: `ack`, `nack` with
/// requeue, or `reject` (dead-lettered), as the table at the top of
/// `consumer` says.
pub(crate) async fn settle(
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
    match result {
        Ok(handled) => done(ctx, delivery, meta, attempt, handled, started).await,
        Err(e) if e.is_transient() && (attempt < ctx.max_deliveries() || cancel.is_cancelled()) => {
            give_back(ctx, delivery, meta, &e).await;
        }
        Err(e) => dead_letter(ctx, delivery, meta, attempt, &e).await,
    }
    // Whatever ended the process (applied, failed), its event goes out now.
    ctx.ended();
}

/// Answers a delivery that was handled: acknowledged, given way, or
/// dead-lettered when its headers lie.
async fn done(
    ctx: &Ctx,
    delivery: &Delivery,
    meta: &BatchMeta,
    attempt: u32,
    handled: Handled,
    started: std::time::Instant,
) {
    match handled {
        Handled::Applied(counts) => {
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
        Handled::AlreadyDone => {
            let _ = delivery.ack(BasicAckOptions::default()).await;
            batch_outcome("already_done");
            tracing::info!("batch already processed; acknowledged again");
        }
        Handled::GaveWay => {
            crate::giveway::give_way(ctx, delivery, meta, attempt).await;
            batch_outcome("gave_way");
        }
        Handled::Misnamed(reason) => {
            tracing::error!(%reason, "dead-lettering a batch whose headers name another organization");
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            batch_outcome("dead_lettered");
            metrics::counter!("objectsync_processes_failed_total", "reason" => "misnamed")
                .increment(1);
        }
        Handled::Orphan => {
            let _ = delivery.ack(BasicAckOptions::default()).await;
            batch_outcome("orphan");
            tracing::warn!(
                "dropped a batch whose request was rolled back after publishing (its client got an error)"
            );
        }
    }
}

/// A transient failure with deliveries left (or on shutdown): noted on the
/// process, and the batch handed back to the broker to deliver again.
async fn give_back(ctx: &Ctx, delivery: &Delivery, meta: &BatchMeta, e: &WorkerError) {
    let reason = e.to_string();
    tracing::warn!(%reason, "giving the batch back to the broker");
    if let Ok(client) = ctx.pool.get().await {
        let _ =
            processes::record_attempt_error(&client, meta.org_id, meta.process_id, &reason).await;
    }
    let _ = delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        })
        .await;
    batch_outcome("requeued");
}

/// A permanent failure, or the last delivery's: the process fails and the
/// broker dead-letters the batch.
async fn dead_letter(
    ctx: &Ctx,
    delivery: &Delivery,
    meta: &BatchMeta,
    attempt: u32,
    e: &WorkerError,
) {
    let reason = if e.is_transient() {
        format!("gave up after {attempt} deliveries: {e}")
    } else {
        e.to_string()
    };
    tracing::error!(%reason, "dead-lettering the batch");
    // If the database is what failed, the dead-letter tracker marks the
    // process failed once it is back.
    if let Ok(client) = ctx.pool.get().await {
        let _ = processes::fail(&client, meta.org_id, meta.process_id, &reason).await;
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

pub(crate) fn batch_outcome(outcome: &'static str) {
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
