//! RabbitMQ: the topology both binaries declare, and a connection that is
//! re-established on demand after the broker goes away.
//!
//! lapin's own auto-recovery is not relied on: a [`Broker`] hands out the
//! live connection and, when it has died, opens a new one (and re-declares
//! the topology) under a lock, so callers see either a working connection or
//! an error they can turn into a 503 or a retry.

use std::sync::{Arc, Mutex};

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::settings::AmqpSettings;

/// The names of everything objectsync declares on the broker.
///
/// Batches go to one of `partitions` quorum queues, chosen by organization
/// (`{prefix}.batches.p{n}`, n = organization id modulo the partition count),
/// and every worker consumes every one of them with a small prefetch each:
/// an organization's backlog fills its own queue, and a batch of another
/// organization is delivered at once from its own, so it waits behind a
/// few batches at most rather than behind the whole backlog. The
/// unpartitioned `{prefix}.batches` queue of earlier versions is still
/// declared and consumed, so batches queued before an upgrade are applied.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The unpartitioned batch queue of earlier versions (still consumed).
    pub queue: String,
    /// The batch queues, by partition.
    pub partitions: Vec<String>,
    /// Fanout exchange that receives dead-lettered batches.
    pub dead_exchange: String,
    /// Legacy: where earlier versions kept a copy of every dead-lettered
    /// batch for operators. Dead letters are now kept in PostgreSQL (the
    /// `dead_letters` table), so this queue is no longer declared; where it
    /// exists, [`Topology::declare`] unbinds it so that it stops growing and
    /// leaves what it holds for the operator to read, then delete.
    pub dead_queue: String,
    /// Where dead-lettered batches go: consumed by workers, which keep each
    /// one in the `dead_letters` table and mark its process `failed`.
    pub dead_track_queue: String,
    /// Deliveries of one batch, first one included (see `AmqpSettings`).
    pub max_deliveries: u32,
}

impl Topology {
    pub fn new(settings: &AmqpSettings) -> Self {
        let p = &settings.prefix;
        let n = settings.partitions.max(1);
        Self {
            queue: format!("{p}.batches"),
            partitions: (0..n).map(|i| format!("{p}.batches.p{i}")).collect(),
            dead_exchange: format!("{p}.dead"),
            dead_queue: format!("{p}.batches.dead"),
            dead_track_queue: format!("{p}.batches.dead.track"),
            max_deliveries: settings.max_deliveries.max(1),
        }
    }

    /// The queue an organization's batches go to.
    pub fn queue_for(&self, org: i64) -> &str {
        let n = self.partitions.len() as i64;
        &self.partitions[org.rem_euclid(n) as usize]
    }

    /// Every queue batches are consumed from: the partitions and the
    /// unpartitioned queue of earlier versions.
    pub fn batch_queues(&self) -> impl Iterator<Item = &String> {
        self.partitions.iter().chain(std::iter::once(&self.queue))
    }

    /// Declares the topology on a channel of its own, and retires the
    /// legacy dead queue; idempotent, so every process does it on every
    /// (re)connection.
    pub async fn declare(&self, conn: &Connection) -> lapin::Result<()> {
        let channel = conn.create_channel().await?;
        self.declare_on(&channel).await?;
        self.retire_dead_queue(conn, &channel).await?;
        let _ = channel.close(200, "OK".into()).await;
        Ok(())
    }

    async fn declare_on(&self, channel: &Channel) -> lapin::Result<()> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.dead_exchange.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        let mut main = quorum();
        main.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.max_deliveries) - 1),
        );
        main.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_exchange.as_str().into()),
        );
        for queue in self.batch_queues() {
            declare_queue(channel, queue, main.clone()).await?;
        }
        declare_queue(channel, &self.dead_track_queue, quorum()).await?;
        channel
            .queue_bind(
                self.dead_track_queue.as_str().into(),
                self.dead_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
    }

    /// Unbinds the legacy dead queue from the dead-letter exchange, if it
    /// exists (see [`Topology::dead_queue`]); unbinding twice is harmless.
    /// Whether it exists is asked with a passive declare on a throwaway
    /// channel, because the broker closes the channel of one that fails.
    async fn retire_dead_queue(&self, conn: &Connection, channel: &Channel) -> lapin::Result<()> {
        let probe = conn.create_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let found = probe
            .queue_declare(
                self.dead_queue.as_str().into(),
                passive,
                FieldTable::default(),
            )
            .await;
        match found {
            Ok(_) => {
                let _ = probe.close(200, "OK".into()).await;
            }
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        channel
            .queue_unbind(
                self.dead_queue.as_str().into(),
                self.dead_exchange.as_str().into(),
                "".into(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(
            queue = %self.dead_queue,
            "unbound the legacy dead-letter queue (dead letters are kept in PostgreSQL); \
             it can be deleted once read"
        );
        Ok(())
    }

    /// Removes everything [`Topology::declare`] made, and the legacy dead
    /// queue if there is one (tests clean up with it). RabbitMQ answers the
    /// deletion of a queue that does not exist with success, so absent
    /// queues are no error.
    pub async fn delete(&self, channel: &Channel) -> lapin::Result<()> {
        let dead = [&self.dead_queue, &self.dead_track_queue];
        for queue in self.batch_queues().chain(dead) {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        channel
            .exchange_delete(
                self.dead_exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await
    }
}

/// Whether the broker refused an operation because its object is absent
/// (`404 NOT_FOUND`, which also closes the channel).
fn is_not_found(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == 404)
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

async fn declare_queue(channel: &Channel, name: &str, args: FieldTable) -> lapin::Result<()> {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .map(|_| ())
}

/// How long opening a connection may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A broker connection that reconnects when asked for after it died.
pub struct Broker {
    url: String,
    name: String,
    topology: Topology,
    current: Mutex<Option<Arc<Connection>>>,
    reconnecting: tokio::sync::Mutex<()>,
}

impl Broker {
    /// Does not connect yet: the first [`Broker::connection`] does.
    pub fn new(settings: &AmqpSettings, name: &str) -> Self {
        Self {
            url: settings.url.clone(),
            name: name.to_owned(),
            topology: Topology::new(settings),
            current: Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(()),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    fn live(&self) -> Option<Arc<Connection>> {
        let guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().filter(|c| c.status().connected()).cloned()
    }

    /// The live connection, opening a new one (and declaring the topology on
    /// it) if there is none.
    pub async fn connection(&self) -> lapin::Result<Arc<Connection>> {
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let _guard = self.reconnecting.lock().await;
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let props = ConnectionProperties::default().with_connection_name(self.name.as_str().into());
        // A broker that accepts TCP but does not finish the handshake (still
        // starting, or blocked) must not hang callers.
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(&self.url, props))
            .await
            .map_err(|_| {
                lapin::Error::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "RabbitMQ did not complete the connection in time",
                ))
            })??;
        self.topology.declare(&conn).await?;
        tracing::info!(connection = %self.name, "connected to RabbitMQ");
        let conn = Arc::new(conn);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// Closes the connection, if any (graceful shutdown).
    pub async fn close(&self) {
        let conn = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(conn) = conn {
            let _ = conn.close(200, "shutting down".into()).await;
        }
    }
}
