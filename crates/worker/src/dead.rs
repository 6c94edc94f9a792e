//! The dead-letter tracker: marks `failed` the process of every batch the
//! broker dead-lettered.
//!
//! Most dead-lettered batches were rejected by a worker that already marked
//! the process failed; this catches the rest — batches the broker gave up on
//! after the delivery limit (say, a worker that crashed on every attempt),
//! and batches rejected while the database was down. The dead-letter
//! exchange copies every dead batch here and to the dead-letter queue that
//! operators inspect, so consuming this copy loses nothing.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio_util::sync::CancellationToken;

use crate::consumer::{Ctx, Session, reconnecting, subscribe};
use crate::headers::{death_reason, previous_deliveries};
use crate::unreadable::identify;
use objectsync_store::processes;

/// Tracks dead letters until `cancel` fires, reconnecting as needed.
pub(crate) async fn run(ctx: Arc<Ctx>, cancel: CancellationToken) {
    reconnecting("dead-letter tracker", &cancel, || track(&ctx, &cancel)).await;
}

async fn track(ctx: &Ctx, cancel: &CancellationToken) -> Session {
    let queue = ctx.broker.topology().dead_track_queue.as_str();
    let (channel, mut consumer) = match subscribe(ctx, queue, 4).await {
        Ok(s) => s,
        Err(error) => {
            return Session::Lost {
                error,
                consumed: false,
            };
        }
    };
    let outcome = loop {
        tokio::select! {
            () = cancel.cancelled() => break Session::Stopped,
            next = consumer.next() => match next {
                Some(Ok(delivery)) => settle(ctx, &delivery, cancel).await,
                Some(Err(error)) => break Session::Lost { error, consumed: true },
                None => break Session::Lost {
                    error: lapin::Error::from(std::io::Error::other("consumer stream ended")),
                    consumed: true,
                },
            },
        }
    };
    let _ = channel.close(200, "OK".into()).await;
    outcome
}

#[tracing::instrument(skip_all, name = "dead_letter", fields(process_id, org_id))]
async fn settle(ctx: &Ctx, delivery: &Delivery, cancel: &CancellationToken) {
    let (named, problem) = identify(&delivery.properties, &delivery.data);
    let Some(named) = named else {
        // A message that names no process; it stays in the dead-letter
        // queue for operators.
        let _ = delivery.ack(BasicAckOptions::default()).await;
        return;
    };
    let why = death_reason(&delivery.properties).unwrap_or_else(|| "unknown".into());
    let mut reason = match why.as_str() {
        "delivery_limit" => format!(
            "dead-lettered after {} deliveries",
            ctx.broker.topology().max_deliveries
        ),
        other => format!("dead-lettered ({other})"),
    };
    if !problem.is_empty() {
        reason = format!("{reason}: {problem}");
    }
    let (org, pid) = (named.org_id, named.process_id);
    let span = tracing::Span::current();
    span.record("process_id", pid.get());
    span.record("org_id", org.get());
    let marked = match ctx.pool.get().await {
        Ok(client) => processes::fail_with_last_error(&client, org, pid, &reason)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match marked {
        Ok(changed) => {
            if changed {
                tracing::warn!(process_id = pid.get(), org_id = org.get(), %reason, "process marked failed");
                metrics::counter!("objectsync_processes_failed_total", "reason" => "dead_lettered")
                    .increment(1);
            }
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
        Err(e) => {
            // The database is away: try again later, without spinning.
            let wait = Duration::from_secs(1).min(Duration::from_millis(
                250 * u64::from(previous_deliveries(&delivery.properties) + 1),
            ));
            tracing::warn!(error = %e, process_id = pid.get(), "could not mark process failed yet");
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(wait) => {}
            }
            let _ = delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
        }
    }
}
