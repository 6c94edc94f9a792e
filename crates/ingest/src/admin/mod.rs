//! Administration: organizations, API keys and object type definitions,
//! over HTTP (`/admin`, behind `admin-token`) and from the CLI.

pub mod cli;
pub(crate) mod http;
pub mod service;

pub use http::router;
