//! The relay: publishes the completion events of ended processes from the
//! outbox (`process_events`) to the topic exchange `{prefix}.events`.
//!
//! Every worker runs one. A pass takes up to [`BATCH`] rows with `for
//! update skip locked` (so relays share the rows and never publish one at
//! the same time), publishes each persistently on a confirm-mode channel
//! with the event id as `message_id`, waits for every confirm, then deletes
//! the rows and commits. A relay that dies between the confirms and the
//! commit leaves the rows to be published again, under the same ids:
//! consumers see at-least-once delivery and can drop copies by id.
//!
//! A relay runs a pass as soon as its worker ended a process (the consumer
//! and the dead-letter tracker wake it after their commit, off the path of
//! the batch), and every `events.poll_ms` for events other processes wrote
//! (an operator's, or another worker's that stopped before publishing).

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation};
use objectsync_store::events::{self, PendingEvent};
use tokio_util::sync::CancellationToken;

use crate::ctx::Ctx;

/// Events published in one pass (one transaction).
const BATCH: i64 = 200;

/// How long the relay waits for the broker's confirm of an event.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// What a pass can fail with; the relay tries again after a pause.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    #[error(transparent)]
    Store(#[from] objectsync_store::StoreError),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error("RabbitMQ: {0}")]
    Broker(#[from] lapin::Error),
    #[error("RabbitMQ did not take event {0}: {1}")]
    Refused(uuid::Uuid, String),
}

/// Publishes events until `stop` fires, then makes one last pass (so the
/// events of the batches this worker applied last are not left to other
/// workers' polls).
pub(crate) async fn run(ctx: Arc<Ctx>, stop: CancellationToken) {
    let poll = Duration::from_millis(ctx.events.poll_ms.max(10));
    let mut channel = None;
    let mut failures: u32 = 0;
    loop {
        match pass(&ctx, &mut channel).await {
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => failures = 0,
            Err(e) => {
                channel = None;
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(error = %e, failures, "could not publish completion events yet");
                }
                let pause = Duration::from_millis(250 * 2u64.pow(failures.min(5)));
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                continue;
            }
        }
        if stop.is_cancelled() {
            return;
        }
        tokio::select! {
            () = stop.cancelled() => {
                let _ = pass(&ctx, &mut channel).await;
                return;
            }
            () = ctx.events_ready.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// A confirm-mode channel on the live connection, kept between passes.
async fn channel(ctx: &Ctx, cached: &mut Option<Channel>) -> lapin::Result<Channel> {
    if let Some(ch) = cached.as_ref().filter(|c| c.status().connected()) {
        return Ok(ch.clone());
    }
    let ch = ctx.broker.connection().await?.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    *cached = Some(ch.clone());
    Ok(ch)
}

/// The message of an event: persistent JSON, its id as `message_id`.
fn properties(e: &PendingEvent) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "x-objectsync-org-id".into(),
        AMQPValue::LongLongInt(e.org_id.get()),
    );
    headers.insert(
        "x-objectsync-process-id".into(),
        AMQPValue::LongLongInt(e.process_id.get()),
    );
    let mut p = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(e.id.to_string().into())
        .with_app_id("objectsync".into())
        .with_headers(headers);
    if let Some(t) = e.ended_at {
        p = p.with_timestamp(u64::try_from(t.timestamp()).unwrap_or(0));
    }
    p
}

/// Publishes up to [`BATCH`] events; how many rows it took.
async fn pass(ctx: &Ctx, cached: &mut Option<Channel>) -> Result<usize, RelayError> {
    let mut client = ctx.events_pool.get().await?;
    let tx = client.transaction().await?;
    let pending = events::take(&tx, BATCH).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let ch = channel(ctx, cached).await?;
    let exchange = ctx.broker.topology().events_exchange.as_str();
    let mut confirms = Vec::with_capacity(pending.len());
    for e in &pending {
        let Some(event) = &e.event else {
            tracing::warn!(
                org_id = e.org_id.get(),
                process_id = e.process_id.get(),
                event_id = %e.id,
                "the process of this event is no longer kept; the event is dropped"
            );
            continue;
        };
        let confirm = ch
            .basic_publish(
                exchange.into(),
                event.routing_key().as_str().into(),
                BasicPublishOptions::default(),
                &event.to_json(),
                properties(e),
            )
            .await?;
        confirms.push((e, confirm));
    }
    let now = chrono::Utc::now();
    for (e, confirm) in confirms {
        // Unanswered, the outbox rows stay locked and this worker's stop
        // waits: after the timeout the transaction rolls back, and the
        // events go out again under the same ids.
        let confirmed = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
            .await
            .map_err(|_| RelayError::Refused(e.id, "no confirm in time".into()))?;
        match confirmed? {
            Confirmation::Ack(_) => {}
            other => return Err(RelayError::Refused(e.id, format!("{other:?}"))),
        }
        if let Some(ended) = e.ended_at {
            let lag = (now - ended).to_std().unwrap_or_default();
            metrics::histogram!("objectsync_event_publish_lag_seconds").record(lag.as_secs_f64());
        }
    }
    let seqs: Vec<i64> = pending.iter().map(|e| e.seq).collect();
    events::sent(&tx, &seqs).await?;
    tx.commit().await?;
    metrics::counter!("objectsync_events_published_total").increment(pending.len() as u64);
    tracing::debug!(events = pending.len(), "completion events published");
    Ok(pending.len())
}
