//! Administration: organizations, API keys (create, list, revoke) and
//! object type definitions, webhooks, and failing a process by hand, over HTTP (`/admin`, behind
//! `admin-token`) and from the CLI.

pub(crate) mod body;
pub mod cli;
pub mod fail;
pub(crate) mod http;
pub mod keys;
pub(crate) mod processes;
pub mod service;
pub mod webhooks;

pub use http::router;
