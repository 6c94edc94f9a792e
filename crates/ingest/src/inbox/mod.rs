//! The AMQP inbox: producers that speak RabbitMQ publish batches to the
//! exchange `{prefix}.inbox` (routing key: the object type) instead of
//! POSTing them, and every ingest replica with `inbox.consume` on takes
//! them from the queue of the same name.
//!
//! A message is checked, limited and recorded by the HTTP API's own code
//! (`auth::authenticate`, `web::body`, `accept::accept`), so it is accepted
//! or refused exactly as the same request over HTTP would be; the answer,
//! the JSON body and the status the HTTP API would have answered, goes to
//! the message's `reply_to`. How each message ends is in `handle`; how
//! its parts map to a request's, in `message`.

mod handle;
mod message;
mod reply;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use objectsync_infra::Broker;
use objectsync_infra::amqp::reconnect::{Session, reconnecting};
use objectsync_infra::settings::InboxSettings;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// How long messages in hand may take to finish after shutdown begins;
/// those that do not are delivered again (to another replica, or this one
/// when it is back).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub(crate) enum InboxError {
    /// The channel or connection failed.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker did not confirm an answer in time.
    #[error("broker: no confirm in time")]
    NoConfirm,
    /// The broker refused an answer (nack).
    #[error("broker: answer refused (nack)")]
    Refused,
    /// A bug: the channel is not in confirm mode.
    #[error("publisher confirms are not enabled on the channel")]
    NotConfirming,
}

/// What the consumer needs.
pub(crate) struct Inbox {
    pub(crate) state: AppState,
    pub(crate) broker: Arc<Broker>,
    pub(crate) settings: InboxSettings,
}

/// Consumes the inbox until `cancel` fires, reconnecting as needed.
pub(crate) async fn run(inbox: Arc<Inbox>, cancel: CancellationToken) {
    reconnecting("inbox consumer", &cancel, || consume(&inbox, &cancel)).await;
}

/// One channel, in confirm mode (for the answers), consuming the inbox
/// with `inbox.prefetch` messages in hand at most, each in a task of its
/// own.
async fn consume(inbox: &Arc<Inbox>, cancel: &CancellationToken) -> Session {
    let (channel, consumer) = match subscribe(inbox).await {
        Ok(s) => s,
        Err(error) => {
            return Session::Lost {
                error,
                consumed: false,
            };
        }
    };
    let tag = consumer.tag();
    let mut deliveries = consumer;
    let mut tasks = JoinSet::new();
    let outcome = loop {
        tokio::select! {
            () = cancel.cancelled() => break Ok(()),
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => {
                    let (inbox, channel, cancel) = (inbox.clone(), channel.clone(), cancel.clone());
                    tasks.spawn(async move {
                        handle::handle(&inbox.state, &channel, delivery, &cancel).await;
                    });
                }
                Some(Err(e)) => break Err(e),
                None => break Err(lapin::Error::from(std::io::Error::other("consumer stream ended"))),
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    };
    if outcome.is_ok() {
        // No new deliveries; those prefetched and not started go back to
        // the queue when the channel closes.
        let _ = channel
            .basic_cancel(tag, BasicCancelOptions::default())
            .await;
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            "inbox messages in hand did not finish in time; the broker will deliver them again"
        );
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

async fn subscribe(inbox: &Inbox) -> lapin::Result<(lapin::Channel, lapin::Consumer)> {
    let conn = inbox.broker.connection().await?;
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let prefetch = inbox.settings.prefetch.max(1);
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let queue = inbox.broker.topology().inbox.as_str();
    let consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue, prefetch, "consuming the inbox");
    Ok((channel, consumer))
}
