//! The answer to an inbox message: the JSON body and status the HTTP API
//! would have answered, published to the message's `reply_to` through the
//! default exchange, with its `correlation_id`, persistent, and confirmed by
//! the broker before the message is acknowledged.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation};
use objectsync_model::ProcessId;

use super::InboxError;
use crate::api::Accepted;
use crate::error::{ApiResult, ErrorBody};
use crate::limits::{Slot, verdict_headers};

/// How long to wait for the broker's confirm of an answer.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// What the HTTP API would have answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The rate limit's headers and `retry-after`, as over HTTP.
    pub(crate) headers: Vec<(&'static str, u64)>,
}

impl Answer {
    /// The answer to `result`, with the limit's verdict in `slot`.
    pub(crate) fn of(result: &ApiResult<ProcessId>, slot: &Slot) -> Self {
        let mut headers = verdict_headers(slot);
        let (status, body) = match result {
            Ok(id) => (202, serde_json::to_vec(&Accepted::new(*id))),
            Err(e) => {
                if let Some(after) = e.retry_after {
                    headers.retain(|(name, _)| *name != "retry-after");
                    headers.push(("retry-after", after));
                }
                let body = ErrorBody {
                    code: e.code,
                    message: e.message.clone(),
                };
                (e.code.status(), serde_json::to_vec(&body))
            }
        };
        Self {
            status,
            // Serializing these two structs cannot fail.
            body: body.unwrap_or_default(),
            headers,
        }
    }

    pub(crate) fn accepted(&self) -> bool {
        self.status == 202
    }
}

/// Whether the broker took an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// Confirmed into the reply queue.
    Confirmed,
    /// No queue of that name: the producer is gone. Nothing more can be
    /// done for it.
    Unroutable,
}

/// Publishes `answer` to `queue` with `correlation_id` and waits for the
/// broker's confirm (`channel` is in confirm mode).
pub(crate) async fn publish(
    channel: &Channel,
    queue: &ShortString,
    correlation_id: Option<&ShortString>,
    request_id: &str,
    answer: &Answer,
) -> Result<Delivered, InboxError> {
    let mut headers = FieldTable::default();
    headers.insert(
        "status".into(),
        AMQPValue::LongInt(i32::from(answer.status)),
    );
    for (name, value) in &answer.headers {
        let value = i32::try_from(*value).unwrap_or(i32::MAX);
        headers.insert((*name).into(), AMQPValue::LongInt(value));
    }
    headers.insert(
        "x-request-id".into(),
        AMQPValue::LongString(request_id.into()),
    );
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_headers(headers);
    if let Some(id) = correlation_id {
        properties = properties.with_correlation_id(id.clone());
    }
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.clone(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &answer.body,
            properties,
        )
        .await?;
    let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
        .await
        .map_err(|_| InboxError::NoConfirm)??;
    let delivered = match confirmation {
        Confirmation::Ack(None) => Delivered::Confirmed,
        Confirmation::Ack(Some(_returned)) => Delivered::Unroutable,
        Confirmation::Nack(_) => return Err(InboxError::Refused),
        Confirmation::NotRequested => return Err(InboxError::NotConfirming),
    };
    let result = match delivered {
        Delivered::Confirmed => "confirmed",
        Delivered::Unroutable => "unroutable",
    };
    metrics::counter!("objectsync_inbox_replies_total", "result" => result).increment(1);
    Ok(delivered)
}
