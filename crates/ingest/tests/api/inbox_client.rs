//! A producer of the AMQP inbox, as the README shows one: publisher
//! confirms, an exclusive reply queue, a correlation id per message.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer};
use objectsync_testkit::TestApp;
use serde_json::Value;

/// One answer from the inbox.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: i64,
    pub(crate) body: Value,
    pub(crate) correlation_id: Option<String>,
    pub(crate) headers: FieldTable,
}

impl Reply {
    /// An integer header of the answer.
    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        match self.headers.inner().get(name)? {
            AMQPValue::LongInt(v) => Some(i64::from(*v)),
            AMQPValue::LongLongInt(v) => Some(*v),
            other => panic!("header {name} is {other:?}"),
        }
    }
}

/// A message to publish: what a producer sets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Msg<'a> {
    pub(crate) routing_key: &'a str,
    pub(crate) kind: Option<&'a str>,
    pub(crate) api_key: Option<&'a str>,
    pub(crate) message_id: Option<&'a str>,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: Vec<u8>,
}

impl<'a> Msg<'a> {
    /// An upsert of `body` to `object_type` with `key`.
    pub(crate) fn upsert(object_type: &'a str, key: &'a str, body: &Value) -> Self {
        Self {
            routing_key: object_type,
            kind: Some("upsert"),
            api_key: Some(key),
            content_type: Some("application/json"),
            body: body.to_string().into_bytes(),
            ..Self::default()
        }
    }
}

pub(crate) struct Producer {
    conn: Connection,
    channel: Channel,
    exchange: String,
    reply_queue: String,
    replies: Consumer,
    sent: u64,
}

impl Producer {
    pub(crate) async fn connect(app: &TestApp) -> Self {
        let conn = objectsync_infra::amqp::connect(&app.settings.amqp, "test-producer")
            .await
            .expect("broker");
        let channel = conn.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
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
            .await
            .expect("reply queue");
        let reply_queue = queue.name().as_str().to_owned();
        let replies = channel
            .basic_consume(
                reply_queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume replies");
        Self {
            conn,
            channel,
            exchange: app.topology().inbox_exchange,
            reply_queue,
            replies,
            sent: 0,
        }
    }

    /// Publishes `msg` persistently, answered to this producer's queue (or
    /// to `reply_to`), and waits for the broker's confirm; returns the
    /// correlation id.
    pub(crate) async fn publish_to(&mut self, msg: &Msg<'_>, reply_to: Option<&str>) -> String {
        self.sent += 1;
        let correlation_id = format!("c-{}", self.sent);
        let mut headers = FieldTable::default();
        if let Some(kind) = msg.kind {
            headers.insert("kind".into(), AMQPValue::LongString(kind.into()));
        }
        if let Some(key) = msg.api_key {
            headers.insert("api-key".into(), AMQPValue::LongString(key.into()));
        }
        let mut props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_headers(headers)
            .with_reply_to(reply_to.unwrap_or(&self.reply_queue).into())
            .with_correlation_id(correlation_id.as_str().into());
        if let Some(id) = msg.message_id {
            props = props.with_message_id(id.into());
        }
        if let Some(t) = msg.content_type {
            props = props.with_content_type(ShortString::from(t));
        }
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                msg.routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &msg.body,
                props,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert_eq!(confirm, Confirmation::Ack(None), "the inbox took it");
        correlation_id
    }

    /// The next answer on this producer's queue (30 s at most).
    pub(crate) async fn reply(&mut self) -> Reply {
        let delivery = tokio::time::timeout(Duration::from_secs(30), self.replies.next())
            .await
            .expect("an answer within 30 s")
            .expect("a delivery")
            .expect("no consumer error");
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
        let props = &delivery.properties;
        let headers = props.headers().clone().unwrap_or_default();
        let status = match headers.inner().get("status") {
            Some(AMQPValue::LongInt(v)) => i64::from(*v),
            other => panic!("status header: {other:?}"),
        };
        assert_eq!(
            props.content_type().as_ref().map(ShortString::as_str),
            Some("application/json")
        );
        Reply {
            status,
            body: serde_json::from_slice(&delivery.data).expect("a JSON answer"),
            correlation_id: props.correlation_id().as_ref().map(|c| c.to_string()),
            headers,
        }
    }

    /// Publishes `msg` and returns its answer, checking the correlation id.
    pub(crate) async fn send(&mut self, msg: &Msg<'_>) -> Reply {
        let id = self.publish_to(msg, None).await;
        let reply = self.reply().await;
        assert_eq!(reply.correlation_id.as_deref(), Some(id.as_str()));
        reply
    }

    pub(crate) async fn close(self) {
        let _ = self.conn.close(200, "OK".into()).await;
    }
}
