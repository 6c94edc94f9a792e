//! The dead-letter tracker: keeps every batch the broker dead-lettered in
//! the `dead_letters` table, for operators to replay or discard, and marks
//! its process `failed` — both in one transaction, then acknowledges.
//!
//! Most dead-lettered batches were rejected by a worker that already marked
//! the process failed; this catches the rest — batches the broker gave up on
//! after the delivery limit (say, a worker that crashed on every attempt),
//! and batches rejected while the database was down, which wait in the queue
//! until it is back. Messages that name no process are kept too, with no
//! organization or process.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio_util::sync::CancellationToken;

use crate::consumer::{Session, reconnecting, subscribe};
use crate::ctx::Ctx;
use crate::error::WorkerError;
use crate::headers::{clean, death_reason, previous_deliveries, to_json};
use crate::unreadable::identify;
use objectsync_infra::message;
use objectsync_store::dead_letters::{self, NewDeadLetter};
use objectsync_store::{ending, processes};

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
    let props = &delivery.properties;
    let (named, problem) = identify(props, &delivery.data);
    let meta = message::read_meta(props).ok();
    let (reason, deliveries) = death(ctx, props, &problem);
    let span = tracing::Span::current();
    if let Some(n) = &named {
        span.record("process_id", n.process_id.get());
        span.record("org_id", n.org_id.get());
    }
    let headers = to_json(props);
    let letter = NewDeadLetter {
        named: named.map(|n| (n.org_id, n.process_id)),
        object_type: meta.as_ref().map(|m| m.object_type.as_str()),
        kind: meta.as_ref().map(|m| m.kind),
        reason: &reason,
        deliveries,
        headers: headers.as_ref(),
        body: &delivery.data,
    };
    match keep(ctx, &letter).await {
        Ok(Kept { failed, recorded }) => {
            if failed {
                ctx.ended();
                tracing::warn!(%reason, "process marked failed");
                metrics::counter!("objectsync_processes_failed_total", "reason" => "dead_lettered")
                    .increment(1);
            }
            if recorded {
                tracing::info!(%reason, bytes = delivery.data.len(), "dead letter kept");
            }
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
        Err(e) => {
            // The database is away: try again later, without spinning.
            let wait = Duration::from_secs(1).min(Duration::from_millis(
                250 * u64::from(previous_deliveries(props) + 1),
            ));
            tracing::warn!(error = %e, "could not keep the dead letter yet");
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

/// Why the broker dead-lettered the message (with what is wrong with it,
/// if it cannot be read), and how many deliveries that took, as far as the
/// message tells: the broker does not carry a message's delivery count into
/// the dead-letter queue (`x-delivery-count` here counts this queue's own
/// redeliveries). Short of the delivery limit a worker rejected it; the
/// deliveries it counted on the process are taken when there is one
/// (`dead_letters::record`), and a message that names none was rejected on
/// its first delivery.
fn death(ctx: &Ctx, props: &BasicProperties, problem: &str) -> (String, i32) {
    let max = ctx.broker.topology().max_deliveries;
    let why = death_reason(props).unwrap_or_else(|| "unknown".into());
    let (mut reason, deliveries) = match why.as_str() {
        "delivery_limit" => (format!("dead-lettered after {max} deliveries"), max),
        other => (format!("dead-lettered ({other})"), 1),
    };
    if !problem.is_empty() {
        reason = format!("{reason}: {problem}");
    }
    (
        clean(&reason),
        i32::try_from(deliveries).unwrap_or(i32::MAX),
    )
}

/// What [`keep`] changed.
struct Kept {
    /// The process was open and is now failed.
    failed: bool,
    /// The dead letter is new (not a redelivery of one kept before).
    recorded: bool,
}

/// Fails the process the dead letter names, if any, and keeps the dead
/// letter, in one transaction. A message whose headers name another
/// organization than its process's fails that process, with the mismatch
/// as the reason, and is kept under the process's own organization, type
/// and kind: a replay can never take it to the organization the headers
/// name.
async fn keep(ctx: &Ctx, letter: &NewDeadLetter<'_>) -> Result<Kept, WorkerError> {
    let mut client = ctx.monitors.get().await?;
    let tx = client.transaction().await?;
    let mut letter = *letter;
    let misnamed;
    if let Some((org, pid)) = letter.named
        && let Some(owner) = ending::owner(&tx, pid).await?
        && owner != org
    {
        misnamed = crate::apply::misnamed(org, pid, owner);
        tracing::warn!(owner = owner.get(), "{misnamed}");
        letter = NewDeadLetter {
            named: Some((owner, pid)),
            object_type: None,
            kind: None,
            reason: &misnamed,
            ..letter
        };
    }
    let failed = match letter.named {
        Some((org, pid)) => processes::fail_with_last_error(&tx, org, pid, letter.reason).await?,
        None => false,
    };
    let recorded = dead_letters::record(&tx, &letter).await?;
    tx.commit().await?;
    Ok(Kept { failed, recorded })
}
