//! Why a service could not start: both binaries fail the same ways.

use crate::{amqp, db};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// A broker URL that cannot be used as it is (or its TLS files):
    /// a configuration error, not something to wait out.
    #[error("configuration: {0}")]
    Broker(#[from] amqp::AmqpUrlError),
    #[error("could not bind the HTTP listener: {0}")]
    Bind(#[from] std::io::Error),
}
