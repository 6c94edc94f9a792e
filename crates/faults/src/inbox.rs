//! Producers over the AMQP inbox, against an ingest replica that is
//! SIGKILLed every few seconds (see `chaos`).
//!
//! They write ranges of their own exactly as the HTTP producers do (`load`)
//! and go in the same ledger, so the same check covers them. Each message
//! carries its idempotency key as `message_id` (and as `correlation_id`,
//! to match its answer) and asks for its answer on the producer's reply
//! queue. A message that gets no answer in time — the replica holding it
//! was killed, the broker restarted, the answer went to a reply queue that
//! died with its connection — is published again with the same
//! `message_id`, as a careful producer would; whichever delivery is
//! checked first makes the process, and every other one answers it.
//!
//! A replica killed mid-message leaves the message unacknowledged, so the
//! broker delivers it again: after the batch was published but before its
//! process committed (a batch message with no process, which no worker may
//! apply), after the commit but before the answer, or after the answer but
//! before the ack.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer};
use objectsync_infra::settings::AmqpSettings;
use objectsync_testkit::Org;
use serde_json::Value;

use crate::load::{Deadline, Ledger, write_ranges};

/// How long a producer waits for an answer before publishing again.
const ANSWER_WAIT: Duration = Duration::from_secs(8);

/// A connection with a channel in confirm mode and a reply queue of its own.
struct Session {
    conn: Connection,
    channel: Channel,
    reply_queue: String,
    replies: Consumer,
}

/// The longest a producer waits for the broker to open a session, take a
/// message or close: a broker that restarts mid-handshake may never
/// answer, and the connection is then given up and opened again.
const BROKER_WAIT: Duration = Duration::from_secs(10);

impl Session {
    /// A session, or `None` if it could not be opened within
    /// [`BROKER_WAIT`].
    async fn open(amqp: &AmqpSettings, id: usize) -> Option<Self> {
        tokio::time::timeout(BROKER_WAIT, Self::try_open(amqp, id))
            .await
            .ok()?
            .ok()
    }

    async fn try_open(amqp: &AmqpSettings, id: usize) -> lapin::Result<Self> {
        let conn = objectsync_infra::amqp::connect(amqp, &format!("faults-inbox-{id}")).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let reply_queue = queue.name().as_str().to_owned();
        let replies = channel
            .basic_consume(
                reply_queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            conn,
            channel,
            reply_queue,
            replies,
        })
    }

    async fn close(self) {
        let _ = tokio::time::timeout(BROKER_WAIT, self.conn.close(200, "OK".into())).await;
    }
}

/// What became of one publication.
enum Outcome {
    Accepted(i64),
    /// Not answered in time, or the connection failed: publish again.
    Again {
        broken: bool,
    },
    /// An answer other than 202: a bug in the suite or the service.
    Refused(String),
}

pub(crate) struct InboxProducer<'a> {
    /// Distinct from every HTTP producer's, so the ranges are its own.
    pub(crate) id: usize,
    pub(crate) ranges: usize,
    pub(crate) amqp: &'a AmqpSettings,
    pub(crate) exchange: &'a str,
    pub(crate) org: &'a Org,
    pub(crate) ledger: &'a Ledger,
}

impl InboxProducer<'_> {
    /// Publishes batches until the deadline, each after the one before was
    /// answered `202`.
    pub(crate) async fn run(&self, until: &Deadline) {
        let mut session: Option<Session> = None;
        write_ranges(
            self.id,
            self.ranges,
            self.ledger,
            until,
            async |action, body, seq| {
                let key = format!("faults-inbox-p{}-{seq}", self.id);
                self.send(&mut session, action, body.as_bytes(), &key, until)
                    .await
            },
        )
        .await;
        if let Some(s) = session {
            s.close().await;
        }
    }

    /// Publishes until a `202`; `None` if the load period ended first or
    /// the answer was a refusal.
    async fn send(
        &self,
        session: &mut Option<Session>,
        action: &str,
        body: &[u8],
        key: &str,
        until: &Deadline,
    ) -> Option<i64> {
        let mut first = true;
        loop {
            // A message already published may still be answered after the
            // deadline: keep at it a while longer so that it lands in the
            // ledger.
            let give_up = until.get() + Duration::from_secs(30);
            if session.is_none() {
                match Session::open(self.amqp, self.id).await {
                    Some(s) => *session = Some(s),
                    None => {
                        self.ledger
                            .inbox_broker_errors
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if let Some(s) = session.as_mut() {
                let counter = match first {
                    true => &self.ledger.inbox_published,
                    false => &self.ledger.inbox_republished,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                first = false;
                match self.publish_and_wait(s, action, body, key).await {
                    Outcome::Accepted(id) => {
                        self.ledger.accepted.fetch_add(1, Ordering::Relaxed);
                        return Some(id);
                    }
                    Outcome::Refused(answer) => {
                        self.ledger.refused.fetch_add(1, Ordering::Relaxed);
                        eprintln!("unexpected inbox answer: {answer}");
                        return None;
                    }
                    Outcome::Again { broken } => {
                        if broken {
                            self.ledger
                                .inbox_broker_errors
                                .fetch_add(1, Ordering::Relaxed);
                            if let Some(s) = session.take() {
                                s.close().await;
                            }
                        }
                    }
                }
            }
            if tokio::time::Instant::now() > give_up {
                self.ledger.unanswered.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn publish_and_wait(
        &self,
        s: &mut Session,
        action: &str,
        body: &[u8],
        key: &str,
    ) -> Outcome {
        let mut headers = FieldTable::default();
        headers.insert("kind".into(), AMQPValue::LongString(action.into()));
        headers.insert(
            "api-key".into(),
            AMQPValue::LongString(self.org.key.as_str().into()),
        );
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(headers)
            .with_message_id(key.into())
            .with_correlation_id(key.into())
            .with_reply_to(s.reply_queue.as_str().into());
        let publish = async {
            let confirm = s
                .channel
                .basic_publish(
                    self.exchange.into(),
                    "item".into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    body,
                    props,
                )
                .await?;
            confirm.await
        };
        match tokio::time::timeout(BROKER_WAIT, publish).await {
            Ok(Ok(Confirmation::Ack(None))) => {}
            // Returned (no queue bound yet), refused, or no confirm.
            _ => return Outcome::Again { broken: true },
        }
        self.ledger.inbox_in_flight.fetch_add(1, Ordering::Relaxed);
        let outcome = self.answer(s, key).await;
        self.ledger.inbox_in_flight.fetch_sub(1, Ordering::Relaxed);
        outcome
    }

    /// The answer to the message published with `key`.
    async fn answer(&self, s: &mut Session, key: &str) -> Outcome {
        let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, s.replies.next()).await;
            let delivery = match next {
                Err(_) => return Outcome::Again { broken: false },
                Ok(Some(Ok(d))) => d,
                Ok(_) => return Outcome::Again { broken: true },
            };
            let props = &delivery.properties;
            // Another answer to a message answered already: delivered again
            // after its answer (a replica killed before its ack), or
            // published again.
            if props.correlation_id().as_ref().map(|c| c.as_str()) != Some(key) {
                self.ledger
                    .inbox_answered_again
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let status = props
                .headers()
                .as_ref()
                .and_then(|h| match h.inner().get("status") {
                    Some(AMQPValue::LongInt(v)) => Some(*v),
                    _ => None,
                });
            let answer: Option<Value> = serde_json::from_slice(&delivery.data).ok();
            return match (
                status,
                answer.as_ref().and_then(|a| a["processId"].as_i64()),
            ) {
                (Some(202), Some(id)) => Outcome::Accepted(id),
                _ => Outcome::Refused(format!(
                    "{status:?}: {}",
                    String::from_utf8_lossy(&delivery.data)
                )),
            };
        }
    }
}
