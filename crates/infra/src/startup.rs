//! Why a service could not start: both binaries fail the same two ways.

use crate::db;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("could not bind the HTTP listener: {0}")]
    Bind(#[from] std::io::Error),
}
