//! The worker's shared context: its pools, its broker, its settings and
//! its slots, handed to the consumer, the dead-letter tracker, the
//! heartbeat, the monitors and the retention sweeper.

use std::sync::Arc;
use std::time::Duration;

use backon::ExponentialBuilder;
use deadpool_postgres::Pool;
use objectsync_infra::Broker;
use objectsync_infra::settings::{
    EventSettings, RetentionSettings, WebhookSettings, WorkerSettings,
};
use tokio::sync::Notify;

use crate::apply;

/// What every delivery handler and background task needs.
pub(crate) struct Ctx {
    /// Sessions that apply batches (apply timeouts).
    pub(crate) pool: Pool,
    /// Sessions of the monitors, dead-letter tracker and heartbeat, with
    /// their own timeouts and out of the way of batches.
    pub(crate) monitors: Pool,
    pub(crate) broker: Arc<Broker>,
    pub(crate) settings: WorkerSettings,
    /// The retention sweeper's sessions (monitors' timeouts): a connection
    /// per sweep, closed after it, which holds the sweeper's session lock.
    pub(crate) sweeper: Pool,
    pub(crate) retention: RetentionSettings,
    /// The confirm-mode channel batches that give way are republished on.
    pub(crate) republish: tokio::sync::Mutex<Option<lapin::Channel>>,
    /// Footprints of other batches, and the slots batches are applied in.
    pub(crate) local: apply::Local,
    /// Plain PostgreSQL or Citus: told once the schema is there, before
    /// the first batch.
    pub(crate) engine: std::sync::OnceLock<objectsync_store::Engine>,
    /// Sessions of the event relay and the webhook sender (monitor
    /// timeouts), so that neither waits behind batches or monitors.
    pub(crate) events_pool: Pool,
    pub(crate) events: EventSettings,
    pub(crate) webhooks: WebhookSettings,
    /// Wakes the relay: this worker ended a process.
    pub(crate) events_ready: Notify,
    /// Wakes the webhook sender: deliveries may be due.
    pub(crate) deliveries_ready: Notify,
}

impl Ctx {
    /// Tells the relay and the webhook sender that a process ended (its
    /// transaction committed), so its event and deliveries go out now
    /// rather than at their next poll.
    pub(crate) fn ended(&self) {
        self.events_ready.notify_one();
        self.deliveries_ready.notify_one();
    }

    pub(crate) fn apply_config(&self, express: bool) -> apply::ApplyConfig {
        apply::ApplyConfig {
            express,
            max_links_per_type: self.settings.max_links_per_type,
            order_wait: Duration::from_millis(self.settings.order_wait_ms),
            engine: self.engine.get().copied().unwrap_or_default(),
        }
    }

    pub(crate) fn max_deliveries(&self) -> u32 {
        self.broker.topology().max_deliveries
    }

    /// Backoff for transient failures within one delivery: exponential with
    /// jitter, bounded in total by the retry budget.
    pub(crate) fn retry_policy(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(5))
            .with_total_delay(Some(Duration::from_millis(self.settings.retry_budget_ms)))
            .without_max_times()
    }
}
