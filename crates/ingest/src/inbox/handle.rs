//! One inbox message, from delivery to acknowledgement.
//!
//! | what happened | answer on `reply_to` | then |
//! |---|---|---|
//! | accepted: the batch is on a batch queue and its process committed (or its idempotency key found the process of an earlier delivery) | `202 {processId}` | ack once the answer is confirmed |
//! | refused (400, 401, 403, 404, 413, 415, 422, 429, or 500 for a bug) | the HTTP API's error body | ack once the answer is confirmed; without `reply_to`, logged and acked |
//! | the database or broker could not take it (the HTTP API's 503) | none | retried here with backoff for [`RETRY_BUDGET`], then `nack` with requeue |
//! | the answer could not be published (broker gone, refused) | — | `nack` with requeue, or the broker requeues it with the channel |
//!
//! A message handed back is delivered again; its idempotency key (see
//! `Incoming::idempotency_key`) makes a batch accepted before answers the
//! same process again instead of queuing a second one.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::FutureExt;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use objectsync_model::limits::MAX_BODY_BYTES;
use objectsync_model::{ApiCode, ProcessId};
use objectsync_store::limits::Class;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::message::Incoming;
use super::reply::{self, Answer, Delivered};
use crate::accept::{Batch, accept};
use crate::error::{ApiError, ApiResult};
use crate::limits::Slot;
use crate::state::AppState;

/// How long a message whose database or broker is away is retried before
/// it is handed back to the queue (where another replica may take it).
pub(crate) const RETRY_BUDGET: Duration = Duration::from_secs(15);

/// How long a message whose answer was not confirmed waits before it is
/// handed back.
const REPLY_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The pauses between those retries.
const RETRY_BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_max_delay(Duration::from_secs(3))
    .with_jitter()
    .without_max_times();

/// Checks, records and answers `delivery`, then acknowledges it (or hands
/// it back), inside a span like an HTTP request's.
pub(crate) async fn handle(
    state: &AppState,
    channel: &Channel,
    delivery: Delivery,
    cancel: &CancellationToken,
) {
    let started = Instant::now();
    let incoming = Incoming::read(&delivery);
    let span = tracing::info_span!(
        "inbox",
        request_id = incoming.request_id.as_str(),
        message_id = incoming.message_id.unwrap_or(""),
        redelivered = delivery.redelivered,
        org_id = tracing::field::Empty,
        object_type = incoming.object_type,
        process_id = tracing::field::Empty,
    );
    let (outcome, status) = settle(state, channel, &delivery, &incoming, cancel)
        .instrument(span)
        .await;
    let labels = [
        ("outcome", outcome.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("objectsync_inbox_messages_total", &labels).increment(1);
    metrics::histogram!("objectsync_inbox_message_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
}

/// What became of the message, for the metrics: its outcome and the
/// status its answer carries (503 when handed back).
async fn settle(
    state: &AppState,
    channel: &Channel,
    delivery: &Delivery,
    incoming: &Incoming<'_>,
    cancel: &CancellationToken,
) -> (&'static str, u16) {
    let Some(answer) = answer_with_retries(state, incoming, cancel).await else {
        requeue(delivery, "the database or broker could not take it").await;
        return ("requeued", 503);
    };
    let status = answer.status;
    let outcome = if answer.accepted() {
        "accepted"
    } else {
        "refused"
    };
    match &incoming.reply_to {
        Some(queue) => {
            let correlation_id = incoming.correlation_id.as_ref();
            match reply::publish(
                channel,
                queue,
                correlation_id,
                &incoming.request_id,
                &answer,
            )
            .await
            {
                Ok(Delivered::Confirmed) => {}
                Ok(Delivered::Unroutable) => tracing::warn!(
                    reply_to = queue.as_str(),
                    status,
                    "no queue took the answer (the producer is gone?); acknowledging the message"
                ),
                Err(e) => {
                    // Not at once: a reply queue that refuses answers (full,
                    // say) would have the message back here in a loop.
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = tokio::time::sleep(REPLY_RETRY_PAUSE) => {}
                    }
                    requeue(delivery, &format!("its answer was not confirmed: {e}")).await;
                    return ("requeued", 503);
                }
            }
        }
        None if !answer.accepted() => tracing::warn!(
            status,
            answer = %String::from_utf8_lossy(&answer.body),
            "inbox message refused; it has no reply_to, so only this log says why"
        ),
        None => {}
    }
    if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
        // The channel is gone; the broker delivers the message again, and
        // its idempotency key finds what this delivery did.
        tracing::warn!(error = %e, "could not acknowledge an inbox message");
    }
    (outcome, status)
}

/// The answer, once the database and broker could give one: a 503 is
/// retried with backoff for [`RETRY_BUDGET`] (or until shutdown), after
/// which `None` hands the message back. A panic is a bug, answered as the
/// HTTP API would answer it (500), not retried.
async fn answer_with_retries(
    state: &AppState,
    incoming: &Incoming<'_>,
    cancel: &CancellationToken,
) -> Option<Answer> {
    let deadline = Instant::now() + RETRY_BUDGET;
    let mut pauses = RETRY_BACKOFF.build();
    loop {
        let slot = Slot::default();
        let result = AssertUnwindSafe(answer(state, incoming, &slot))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::internal(
                    &"panicked while checking an inbox message",
                    false,
                ))
            });
        match result {
            Err(e) if e.code == ApiCode::ServiceUnavailable => {
                let pause = pauses.next()?;
                if Instant::now() + pause > deadline {
                    return None;
                }
                tokio::select! {
                    () = cancel.cancelled() => return None,
                    () = tokio::time::sleep(pause) => {}
                }
            }
            result => return Some(Answer::of(&result, &slot)),
        }
    }
}

/// The checks of an HTTP batch request, in its order: the endpoint
/// (`kind`), the key and rate limit, the media type, the size, then
/// everything `accept` checks.
async fn answer(state: &AppState, incoming: &Incoming<'_>, slot: &Slot) -> ApiResult<ProcessId> {
    let kind = incoming.kind.clone()?;
    let org = crate::auth::authenticate(
        state,
        incoming.api_key.as_deref(),
        Class::Writes,
        Some(slot),
    )
    .await?;
    crate::web::check_media_type(&incoming.media)?;
    if incoming.body.len() > MAX_BODY_BYTES {
        return Err(crate::web::too_large());
    }
    let key = incoming.idempotency_key(kind);
    let batch = Batch {
        object_type: incoming.object_type,
        kind,
        body: incoming.body,
        idempotency_key: Some(&key),
        request_id: Some(&incoming.request_id),
    };
    accept(state, &org, Some(slot), batch).await
}

async fn requeue(delivery: &Delivery, why: &str) {
    tracing::warn!("inbox message handed back to the queue: {why}");
    let requeue = BasicNackOptions {
        requeue: true,
        multiple: false,
    };
    if let Err(e) = delivery.nack(requeue).await {
        tracing::warn!(error = %e, "could not hand an inbox message back; the broker will when the channel closes");
    }
}
