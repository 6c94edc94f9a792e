//! Every worker failure says whether to retry, and the kind decides what
//! happens to the batch:
//!
//! | variant | examples | fate |
//! |---|---|---|
//! | `Store` (transient or conflict) | database unreachable, pool timeout, serialization failure, deadlock, lock timeout, a unique key taken by a racing batch | retried with backoff, then handed back to the broker; dead-lettered after the configured number of deliveries |
//! | `NotYet` | the process row is not committed yet | as above, logged at debug level |
//! | `Retry` | the broker refused a publish the worker needed | as above |
//! | `Store` (permanent) | any other database error (a bug, a schema mismatch) | dead-lettered at once, process failed |
//! | `Fatal` | an unreadable body (not from ingest), an object type gone | dead-lettered at once, process failed |
//!
//! Messages whose headers cannot be read (another version, garbage) never
//! reach this type: they are dead-lettered on arrival, and the process they
//! name is failed (see `unreadable`). A panic while applying is fatal too.
//!
//! Not a failure: a batch whose request rolled back after publishing (its
//! client got an error) has no process; it is acknowledged and dropped
//! (`Handled::Orphan`). Nor a retry: a message whose headers name another
//! organization than its process's fails that process and is dead-lettered
//! at once (`Handled::Misnamed`).

use objectsync_model::ProcessId;
use objectsync_store::{ErrorKind, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A database failure, classified by the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The batch's process row is not committed yet (the message outran
    /// ingest's commit): an ordinary, short wait.
    #[error("process {0} is not visible yet")]
    NotYet(ProcessId),
    /// Worth another try later, for a reason outside the database.
    #[error("{0}")]
    Retry(String),
    /// Fails the same way every time: dead-letter the batch.
    #[error("{0}")]
    Fatal(String),
}

impl WorkerError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.kind() != ErrorKind::Permanent,
            Self::NotYet(_) | Self::Retry(_) => true,
            Self::Fatal(_) => false,
        }
    }
}

impl From<deadpool_postgres::PoolError> for WorkerError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Store(e.into())
    }
}

impl From<tokio_postgres::Error> for WorkerError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Classifies a failure that is not a database error where it happens:
/// `.fatal()?` for what will fail the same way every time.
pub(crate) trait Classify<T> {
    fn fatal(self) -> Result<T, WorkerError>;
}

impl<T, E: std::fmt::Display> Classify<T> for Result<T, E> {
    fn fatal(self) -> Result<T, WorkerError> {
        self.map_err(|e| WorkerError::Fatal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_decides_retries() {
        let fatal: Result<(), _> = Err("bad").fatal();
        assert!(!fatal.unwrap_err().is_transient());
        assert!(WorkerError::Retry("later".into()).is_transient());
        assert!(WorkerError::NotYet(ProcessId(1)).is_transient());
        assert!(!WorkerError::Store(StoreError::stored("corrupt")).is_transient());
    }
}
