//! Every worker failure is transient or permanent, and the kind decides what
//! happens to the batch:
//!
//! | kind        | examples                                              | fate                                   |
//! |-------------|-------------------------------------------------------|----------------------------------------|
//! | `Transient` | database or broker unreachable, pool timeout,         | retried with backoff, then handed back |
//! |             | serialization failure (40001), deadlock (40P01),      | to the broker; dead-lettered after the |
//! |             | lock timeout, a unique key taken by a racing batch    | configured number of deliveries        |
//! | `NotYet`    | the process row is not committed yet                  | as `Transient`, logged at debug level  |
//! | `Permanent` | unreadable body (not from ingest), object type gone,  | dead-lettered at once, process failed  |
//! |             | any other database error (a bug), a panic             |                                        |
//!
//! Messages whose headers cannot be read (another version, garbage) never
//! reach this type: they are dead-lettered on arrival, and the process they
//! name is failed (see `unreadable`).
//!
//! Not a failure: a batch whose request rolled back after publishing (its
//! client got an error) has no process; it is acknowledged and dropped
//! (`Handled::Orphan`).

use objectsync_infra::db;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Worth another try later.
    #[error("{0}")]
    Transient(String),
    /// The batch's process row is not committed yet (the message outran
    /// ingest's commit): an ordinary, short wait.
    #[error("process {0} is not visible yet")]
    NotYet(i64),
    /// Fails the same way every time: dead-letter the batch.
    #[error("{0}")]
    Permanent(String),
}

impl WorkerError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::NotYet(_))
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

impl From<objectsync_infra::object_types::ObjectTypeError> for WorkerError {
    fn from(e: objectsync_infra::object_types::ObjectTypeError) -> Self {
        match e {
            objectsync_infra::object_types::ObjectTypeError::Postgres(e) => e.into(),
            other => Self::Permanent(other.to_string()),
        }
    }
}
