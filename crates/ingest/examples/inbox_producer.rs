//! Publishes one batch to the AMQP inbox and prints the answer:
//! `cargo run -p objectsync-ingest --example inbox_producer -- API_KEY [OBJECT_TYPE]`
//! (`AMQP_URL` and `OBJECTSYNC__AMQP__PREFIX` as for the services). The
//! README shows this file.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let prefix = std::env::var("OBJECTSYNC__AMQP__PREFIX").unwrap_or_else(|_| "objectsync".into());
    let mut args = std::env::args().skip(1);
    let api_key = args
        .next()
        .ok_or("usage: inbox_producer API_KEY [OBJECT_TYPE]")?;
    let object_type = args.next().unwrap_or_else(|| "vehicle".into());

    let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    // Publisher confirms: a batch may be forgotten once the broker acks it.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    // A reply queue of this connection's own, gone with it.
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let replies = channel
        .queue_declare("".into(), exclusive, FieldTable::default())
        .await?;
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let mut answers = channel
        .basic_consume(
            replies.name().clone(),
            "".into(),
            no_ack,
            FieldTable::default(),
        )
        .await?;

    let body =
        br#"{"records": [{"identifiers": {"ext_id": "car-1"}, "attributes": {"name": "Zoe"}}]}"#;
    let mut headers = FieldTable::default();
    headers.insert(
        "api-key".into(),
        AMQPValue::LongString(api_key.as_str().into()),
    );
    headers.insert("kind".into(), AMQPValue::LongString("upsert".into()));
    // The message id is the batch's idempotency key: publishing it again
    // (after a lost confirm, say) answers the same process.
    let message_id = ShortString::from(format!("cars-{}", uuid::Uuid::new_v4()));
    let correlation_id = ShortString::from(uuid::Uuid::new_v4().to_string());
    let properties = BasicProperties::default()
        .with_delivery_mode(2) // persistent
        .with_content_type("application/json".into())
        .with_message_id(message_id)
        .with_reply_to(replies.name().clone())
        .with_correlation_id(correlation_id.clone())
        .with_headers(headers);
    let confirm = channel
        .basic_publish(
            format!("{prefix}.inbox").into(),
            object_type.as_str().into(), // the routing key is the object type
            BasicPublishOptions {
                mandatory: true, // returned, not dropped, if the inbox is missing
                ..BasicPublishOptions::default()
            },
            body,
            properties,
        )
        .await?
        .await?;
    if confirm != Confirmation::Ack(None) {
        return Err(format!("the broker did not take the batch: {confirm:?}").into());
    }

    let answer = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(delivery) = answers.next().await {
            let delivery = delivery?;
            if delivery.properties.correlation_id().as_ref() == Some(&correlation_id) {
                return Ok(Some(delivery));
            }
        }
        Ok::<_, lapin::Error>(None)
    })
    .await??
    .ok_or("the reply queue closed")?;
    // `status`: the HTTP status the API would have answered (202, 400, 401 …).
    let status = answer
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("status").cloned());
    println!("{status:?} {}", String::from_utf8_lossy(&answer.data));
    conn.close(200, "OK".into()).await?;
    Ok(())
}
