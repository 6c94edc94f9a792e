//! The AMQP inbox's consumer, in each ingest replica.

use serde::Deserialize;

/// Whether and how this ingest replica consumes the inbox (the exchange and
/// queue are declared either way, so producers can publish while every
/// consumer is off; see `objectsync_ingest`'s `inbox`).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct InboxSettings {
    /// Consume the inbox in this replica. Off, say, on replicas that should
    /// serve HTTP only while others take the AMQP producers.
    pub consume: bool,
    /// Inbox messages this replica handles at once (the AMQP prefetch): each
    /// holds a database connection while it is checked and recorded.
    pub prefetch: u16,
}
