//! Giving a batch's place back: a copy of the message goes to the back of
//! the queue (published persistently, confirmed), then the delivery is
//! acknowledged. A `nack` with requeue would do the same in one step, but
//! RabbitMQ counts it as a failed delivery, and a batch that only waited
//! must not get closer to being dead-lettered. If the worker dies between
//! the confirm and the ack, the batch is delivered twice, which is harmless:
//! the second delivery finds its process final.

use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Confirmation};
use objectsync_model::BatchMeta;

use crate::ctx::Ctx;
use crate::headers::PRIOR_DELIVERIES;

async fn channel(ctx: &Ctx) -> lapin::Result<Channel> {
    let mut cached = ctx.republish.lock().await;
    if let Some(ch) = cached.as_ref().filter(|c| c.status().connected()) {
        return Ok(ch.clone());
    }
    let ch = ctx.broker.connection().await?.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    *cached = Some(ch.clone());
    Ok(ch)
}

/// The delivery's headers for its copy: the broker's own bookkeeping
/// dropped, and the deliveries so far (`attempt`, this one included, did not
/// fail) carried over.
fn copied_headers(delivery: &Delivery, attempt: u32) -> FieldTable {
    let mut headers = FieldTable::default();
    if let Some(original) = delivery.properties.headers() {
        for (k, v) in original.inner() {
            if !matches!(
                k.as_str(),
                "x-delivery-count" | "x-death" | "x-first-death-exchange"
            ) {
                headers.insert(k.clone(), v.clone());
            }
        }
    }
    headers.insert(
        PRIOR_DELIVERIES.into(),
        AMQPValue::LongLongInt(i64::from(attempt.saturating_sub(1))),
    );
    headers
}

async fn republish(ctx: &Ctx, delivery: &Delivery, attempt: u32) -> Result<(), String> {
    let channel = channel(ctx).await.map_err(|e| e.to_string())?;
    let properties = delivery
        .properties
        .clone()
        .with_headers(copied_headers(delivery, attempt))
        .with_delivery_mode(2);
    let confirm = channel
        .basic_publish(
            "".into(),
            delivery.routing_key.clone(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &delivery.data,
            properties,
        )
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    match confirm {
        Confirmation::Ack(None) => Ok(()),
        other => Err(format!("the broker did not take the copy: {other:?}")),
    }
}

/// Puts the batch back at the end of its queue and notes when (see
/// `waits::gave_way`); if that fails, hands it back to the broker with a
/// `nack` instead.
pub(crate) async fn give_way(ctx: &Ctx, delivery: &Delivery, meta: &BatchMeta, attempt: u32) {
    match republish(ctx, delivery, attempt).await {
        Ok(()) => {
            crate::waits::gave_way(&ctx.pool, meta).await;
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not put the batch back at the end of the queue; requeueing it");
            let _ = delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
        }
    }
}
