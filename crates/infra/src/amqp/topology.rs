//! The names of everything objectsync declares on the broker, and the
//! declarations.

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ExchangeKind};

use crate::settings::AmqpSettings;

/// The names of everything objectsync declares on the broker, and how a
/// batch picks its queue.
///
/// Batches travel in two lanes, both quorum queues that every worker
/// consumes with a small prefetch each:
/// - the *express* queue, `{prefix}.batches.express`, takes the batches of
///   organizations with fewer than `bulk_after` batches open, so it holds at
///   most that many of any one organization, whatever their ids;
/// - the *bulk* queues, `{prefix}.batches.p{n}` (`partitions` of them), take
///   the batches of an organization that has `bulk_after` open: it is given
///   the bulk queue with the fewest waiting messages when its backlog
///   starts, and keeps it for as long as it has a batch open there, so its
///   backlog sits in a queue of its own while fewer organizations than
///   queues have one, and its batches stay in acceptance order.
///
/// Ingest decides (see `objectsync_ingest::lanes`); this type only names
/// the queues. The bulk queues have the names of the partitions of earlier
/// versions, which put an organization's batches in
/// [`Topology::hash_partition`]; those and the unpartitioned
/// `{prefix}.batches` of earlier still are consumed, so batches queued
/// before an upgrade are applied.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The unpartitioned batch queue of earlier versions (still consumed).
    pub queue: String,
    /// The express lane.
    pub express: String,
    /// The bulk lane's queues.
    pub partitions: Vec<String>,
    /// Open batches from which an organization's next ones go to the bulk
    /// lane.
    pub bulk_after: u32,
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
    /// Where producers publish batches over AMQP: a topic exchange, the
    /// routing key being the object type.
    pub inbox_exchange: String,
    /// The queue bound to it, consumed by ingest (see `objectsync_ingest`'s
    /// `inbox`).
    pub inbox: String,
    /// Durable topic exchange the completion event of every process that
    /// ends is published to, with the routing key
    /// `process.{completed|failed}.{org_id}.{object_type}`. objectsync
    /// binds no queue to it: consumers bind their own.
    pub events_exchange: String,
}

impl Topology {
    pub fn new(settings: &AmqpSettings) -> Self {
        let p = &settings.prefix;
        let n = settings.partitions.max(1);
        Self {
            queue: format!("{p}.batches"),
            express: format!("{p}.batches.express"),
            partitions: (0..n).map(|i| format!("{p}.batches.p{i}")).collect(),
            bulk_after: settings.bulk_after.max(1),
            dead_exchange: format!("{p}.dead"),
            dead_queue: format!("{p}.batches.dead"),
            dead_track_queue: format!("{p}.batches.dead.track"),
            max_deliveries: settings.max_deliveries.max(1),
            inbox_exchange: format!("{p}.inbox"),
            inbox: format!("{p}.inbox"),
            events_exchange: format!("{p}.events"),
        }
    }

    /// The bulk queue chosen by organization id modulo the partition count:
    /// where versions before the express lane queued every batch of the
    /// organization (so where its batches accepted then still are).
    pub fn hash_partition(&self, org: i64) -> &str {
        let n = self.partitions.len() as i64;
        &self.partitions[org.rem_euclid(n) as usize]
    }

    /// Whether `queue` is one of the bulk lane's queues.
    pub fn is_bulk(&self, queue: &str) -> bool {
        self.partitions.iter().any(|p| p == queue)
    }

    /// Every queue batches are consumed from: the express lane (first: an
    /// organization's batches enter it before they enter a bulk queue), the
    /// bulk lane, and the unpartitioned queue of earlier versions.
    pub fn batch_queues(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.express)
            .chain(&self.partitions)
            .chain(std::iter::once(&self.queue))
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
        channel
            .exchange_declare(
                self.events_exchange.as_str().into(),
                ExchangeKind::Topic,
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
            .await?;
        self.declare_inbox(channel).await
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
        let dead = [&self.dead_queue, &self.dead_track_queue, &self.inbox];
        for queue in self.batch_queues().chain(dead) {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [
            &self.dead_exchange,
            &self.inbox_exchange,
            &self.events_exchange,
        ] {
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

/// Whether the broker refused an operation because its object is absent
/// (`404 NOT_FOUND`, which also closes the channel).
fn is_not_found(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == 404)
}

pub(crate) fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

pub(crate) async fn declare_queue(
    channel: &Channel,
    name: &str,
    args: FieldTable,
) -> lapin::Result<()> {
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

/// Reads a queue's counts (ready messages, consumers) without declaring
/// it: a passive declare, which the broker answers for a queue that exists
/// (and answers by closing the channel for one that does not).
pub async fn inspect(channel: &Channel, queue: &str) -> lapin::Result<lapin::Queue> {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}
