//! Every worker failure is one of two kinds, and the kind decides what
//! happens to the batch:
//!
//! | kind        | examples                                              | fate                                   |
//! |-------------|-------------------------------------------------------|----------------------------------------|
//! | `Transient` | database or broker unreachable, pool timeout,         | retried with backoff, then handed back |
//! |             | serialization failure (40001), deadlock (40P01),      | to the broker; dead-lettered after the |
//! |             | a process row not yet committed                       | configured number of deliveries        |
//! | `Permanent` | malformed envelope, unknown envelope version, object  | dead-lettered at once, process failed  |
//! |             | type gone, a process that never committed             |                                        |

use objectsync_infra::db;
use objectsync_model::EnvelopeError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Worth another try later.
    #[error("{0}")]
    Transient(String),
    /// Fails the same way every time: dead-letter the batch.
    #[error("{0}")]
    Permanent(String),
}

impl WorkerError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl From<tokio_postgres::Error> for WorkerError {
    fn from(e: tokio_postgres::Error) -> Self {
        let text = format!("database: {}", db::describe(&e));
        if db::is_transient(&e) {
            Self::Transient(text)
        } else {
            Self::Permanent(text)
        }
    }
}

impl From<deadpool_postgres::PoolError> for WorkerError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        if db::pool_error_is_transient(&e) {
            Self::Transient(format!("database: {}", db::describe_pool(&e)))
        } else {
            Self::Permanent(format!("database pool: {}", db::describe_pool(&e)))
        }
    }
}

impl From<EnvelopeError> for WorkerError {
    fn from(e: EnvelopeError) -> Self {
        Self::Permanent(e.to_string())
    }
}

impl From<objectsync_infra::object_types::ObjectTypeError> for WorkerError {
    fn from(e: objectsync_infra::object_types::ObjectTypeError) -> Self {
        match e {
            objectsync_infra::object_types::ObjectTypeError::Postgres(e) => e.into(),
            other => Self::Permanent(other.to_string()),
        }
    }
}
