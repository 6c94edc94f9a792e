//! Gauges that need a query to know: the organizations with the most open
//! processes, and the depth of every batch queue and of the inbox.
//! Refreshed every few seconds by each ingest replica (they all say the
//! same).
//!
//! Open processes are reported by rank (`objectsync_open_processes{rank}`,
//! 1 to 5) rather than by organization, so the number of series stays
//! fixed however many organizations there are; the organization holding a
//! rank is logged when its backlog passes 100 and is in
//! `dashboard.backlog`.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use objectsync_console::{QueueDepth, Queues};
use objectsync_infra::Broker;
use objectsync_store::limits;
use tokio_util::sync::CancellationToken;

const RANKS: i64 = 5;

pub(crate) async fn run(
    pool: Pool,
    broker: Arc<Broker>,
    queues: Queues,
    cancel: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(e) = open_processes(&pool).await {
            tracing::debug!(error = %e, "could not count open processes");
        }
        if let Err(e) = queue_depths(&broker, &queues).await {
            tracing::debug!(error = %e, "could not read queue depths");
        }
    }
}

async fn open_processes(pool: &Pool) -> Result<(), objectsync_store::StoreError> {
    let client = pool.get().await?;
    let busiest = limits::busiest(&client, RANKS).await?;
    for rank in 1..=RANKS {
        let open = busiest.get((rank - 1) as usize).map_or(0, |(_, n)| *n);
        metrics::gauge!("objectsync_open_processes", "rank" => rank.to_string()).set(open as f64);
    }
    if let Some((org, open)) = busiest.first()
        && *open >= 100
    {
        tracing::info!(
            org_id = org.get(),
            open,
            "largest backlog of open processes"
        );
    }
    Ok(())
}

async fn queue_depths(broker: &Broker, snapshot: &Queues) -> Result<(), lapin::Error> {
    let conn = broker.connection().await?;
    let channel = conn.create_channel().await?;
    let topology = broker.topology();
    // Not the legacy dead queue, which may not exist: a passive declare of
    // a missing queue closes the channel.
    let queues = topology
        .batch_queues()
        .chain([&topology.dead_track_queue, &topology.inbox]);
    let mut read = Vec::new();
    for queue in queues {
        let q = objectsync_infra::amqp::inspect(&channel, queue).await?;
        metrics::gauge!("objectsync_queue_depth", "queue" => queue.clone())
            .set(f64::from(q.message_count()));
        metrics::gauge!("objectsync_queue_consumers", "queue" => queue.clone())
            .set(f64::from(q.consumer_count()));
        read.push(QueueDepth {
            name: queue.clone(),
            messages: q.message_count(),
            consumers: q.consumer_count(),
        });
    }
    *snapshot.write().unwrap_or_else(|e| e.into_inner()) = read;
    let _ = channel.close(200, "OK".into()).await;
    Ok(())
}
