//! What the ingest and worker binaries share: settings, telemetry, signal
//! handling, the PostgreSQL pool and migrations, the RabbitMQ topology and
//! connection, the health endpoints and the probe container health checks
//! run against them.

pub mod amqp;
pub mod db;
pub mod message;
pub mod metrics;
pub mod ops;
pub mod probe;
pub mod settings;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod tls;
pub mod token_guard;
pub mod webhook;

pub use amqp::{Broker, Topology};
pub use settings::{Role, Settings};
pub use startup::StartupError;
