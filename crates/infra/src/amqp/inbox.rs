//! The inbox: where producers that speak AMQP publish batches instead of
//! POSTing them. A durable topic exchange, so the routing key can carry the
//! object type and operators can bind more queues to it (say, a copy of
//! one type's batches), and one quorum queue bound to every key, which
//! ingest consumes.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions};
use lapin::types::FieldTable;
use lapin::{Channel, ExchangeKind};

use super::{Topology, declare_queue, quorum};

impl Topology {
    /// Declares the inbox exchange and queue and binds them (every routing
    /// key).
    pub(super) async fn declare_inbox(&self, channel: &Channel) -> lapin::Result<()> {
        channel
            .exchange_declare(
                self.inbox_exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        declare_queue(channel, &self.inbox, quorum()).await?;
        channel
            .queue_bind(
                self.inbox.as_str().into(),
                self.inbox_exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
    }
}
