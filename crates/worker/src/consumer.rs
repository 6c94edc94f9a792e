//! Consuming batches: an explicit reconnect loop around one consumer
//! channel, with up to `prefetch` batches applied at once.
//!
//! Each delivery ends in exactly one of:
//! - `ack` — applied, or found already applied;
//! - `nack` with requeue — a transient failure outlasted this delivery's
//!   retry budget; the broker counts the delivery and redelivers;
//! - `reject` without requeue — permanent failure, or the last allowed
//!   delivery failed; the broker dead-letters it and the process is marked
//!   `failed`.

use std::sync::Arc;
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use objectsync_infra::message;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ctx::Ctx;
use crate::headers::previous_deliveries;
use crate::settle;
use objectsync_store::processes;

/// The reconnect loop, shared with ingest's inbox (see
/// `objectsync_infra::amqp::reconnect`).
pub(crate) use objectsync_infra::amqp::reconnect::{Session, reconnecting};

/// Consumes batches until `cancel` fires.
pub(crate) async fn run(ctx: Arc<Ctx>, cancel: CancellationToken) {
    reconnecting("batch consumer", &cancel, || consume(&ctx, &cancel)).await;
}

/// Consumes every batch queue on one channel, each with a prefetch of
/// `worker.prefetch`, so that a backlog in one queue (the bulk queue of an
/// organization's) never stands between the worker and a batch in another,
/// the express queue above all; how many batches are applied at once is
/// bounded separately, by as many slots (see `apply::Local`), which an
/// express batch queues for behind the batches already holding them and
/// one bulk batch at most.
async fn consume(ctx: &Arc<Ctx>, cancel: &CancellationToken) -> Session {
    let topology = ctx.broker.topology();
    let queues: Vec<&str> = topology.batch_queues().map(String::as_str).collect();
    match subscribe_all(ctx, &queues, ctx.settings.prefetch).await {
        Ok((channel, consumers)) => drain(ctx, cancel, channel, consumers).await,
        Err(error) => Session::Lost {
            error,
            consumed: false,
        },
    }
}

/// Opens a channel on the live connection and consumes each of `queues`
/// with `prefetch` unacknowledged deliveries at most.
async fn subscribe_all(
    ctx: &Ctx,
    queues: &[&str],
    prefetch: u16,
) -> lapin::Result<(lapin::Channel, Vec<lapin::Consumer>)> {
    let conn = ctx.broker.connection().await?;
    let channel = conn.create_channel().await?;
    channel
        .basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await?;
    let mut consumers = Vec::with_capacity(queues.len());
    for queue in queues {
        consumers.push(
            channel
                .basic_consume(
                    (*queue).into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?,
        );
    }
    tracing::info!(?queues, prefetch, "consuming");
    Ok((channel, consumers))
}

/// Opens a channel on the live connection and consumes `queue` with
/// `prefetch` unacknowledged deliveries at most.
pub(crate) async fn subscribe(
    ctx: &Ctx,
    queue: &str,
    prefetch: u16,
) -> lapin::Result<(lapin::Channel, lapin::Consumer)> {
    let (channel, mut consumers) = subscribe_all(ctx, &[queue], prefetch).await?;
    let consumer = consumers.pop().expect("one consumer per queue");
    Ok((channel, consumer))
}

/// Hands deliveries to tasks until `cancel` fires or the broker goes away,
/// then lets in-flight batches finish within the grace period.
async fn drain(
    ctx: &Arc<Ctx>,
    cancel: &CancellationToken,
    channel: lapin::Channel,
    consumers: Vec<lapin::Consumer>,
) -> Session {
    let tags: Vec<_> = consumers.iter().map(|c| c.tag()).collect();
    let mut deliveries = futures_util::stream::select_all(consumers);
    let mut tasks = JoinSet::new();
    let outcome = loop {
        tokio::select! {
            () = cancel.cancelled() => break Ok(()),
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => {
                    tasks.spawn(handle_delivery(ctx.clone(), delivery, cancel.clone()));
                }
                Some(Err(e)) => break Err(e),
                None => break Err(lapin::Error::from(std::io::Error::other("consumer stream ended"))),
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    };
    if outcome.is_ok() {
        // Stop new deliveries; those prefetched but not started are
        // requeued by the broker when the channel closes.
        for tag in tags {
            let _ = channel
                .basic_cancel(tag, BasicCancelOptions::default())
                .await;
        }
    }
    let grace = Duration::from_secs(ctx.settings.shutdown_grace_secs);
    let in_flight = tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "waiting for in-flight batches");
    }
    if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("in-flight batches did not finish in time; the broker will redeliver them");
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

async fn handle_delivery(ctx: Arc<Ctx>, delivery: Delivery, cancel: CancellationToken) {
    let attempt = previous_deliveries(&delivery.properties) + 1;
    let meta = match message::read_meta(&delivery.properties) {
        Ok(meta) => meta,
        Err(e) => {
            crate::unreadable::fail(&ctx, &e, &delivery.data).await;
            ctx.ended();
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            settle::batch_outcome("dead_lettered");
            return;
        }
    };
    // Listed as held until settled, so that no monitor takes its process
    // for one whose message is lost.
    let _held = ctx.local.hold(meta.org_id, meta.process_id);
    let span = tracing::info_span!(
        "batch",
        process_id = meta.process_id.get(),
        org_id = meta.org_id.get(),
        object_type = %meta.object_type,
        request_id = meta.request_id.as_deref().unwrap_or(""),
        attempt,
    );
    let settled = AssertUnwindSafe(settle::settle(&ctx, &delivery, &meta, attempt, &cancel))
        .catch_unwind()
        .instrument(span)
        .await;
    if settled.is_err() {
        // A bug, not a state of the world: retrying would panic again.
        let reason = "the worker panicked while applying the batch; see its log";
        tracing::error!(
            process_id = meta.process_id.get(),
            "{reason}; dead-lettering it"
        );
        if let Ok(client) = ctx.pool.get().await {
            let _ = processes::fail(&client, meta.org_id, meta.process_id, reason).await;
        }
        let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
        metrics::counter!("objectsync_processes_failed_total", "reason" => "panic").increment(1);
    }
}
