//! The ingest service: the public HTTP API (Brevo-compatible `/v3`), the
//! admin API and CLI, and the embeddable [`Publisher`].

pub mod admin;
pub mod api;
pub mod auth;
pub mod error;
pub mod idempotency;
pub mod publisher;
pub mod startup;
pub mod state;

pub use publisher::{PublishError, Publisher};
pub use startup::Application;
