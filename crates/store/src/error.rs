//! The one database error type: what failed, kept as the source, and what
//! kind of failure it is, decided once here. Each edge maps the kind to its
//! own vocabulary (see [`ErrorKind`]).

use std::fmt;

use tokio_postgres::error::SqlState;

/// What kind of failure a database error is, which decides what each edge
/// does with it.
///
/// | kind | examples | worker | HTTP |
/// |---|---|---|---|
/// | `Transient` | connection lost, pool timeout, server restarting or overloaded, serialization failure, deadlock, statement or lock timeout | retry with backoff | 503 |
/// | `Conflict` | a unique or foreign key the change ran into | retry (a racing batch took the key first) | 409 |
/// | `Permanent` | anything else: a bug, a schema that does not match | dead-letter | 500 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Transient,
    Conflict,
    Permanent,
}

/// What went wrong underneath.
#[derive(Debug)]
pub enum Cause {
    Postgres(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    /// A stored value that does not read back (a corrupt definition).
    Stored(String),
}

/// A database error with its kind.
#[derive(Debug)]
pub struct StoreError {
    kind: ErrorKind,
    cause: Cause,
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// A stored value that cannot be read back: permanent.
    pub fn stored(what: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Permanent,
            cause: Cause::Stored(what.into()),
        }
    }

    /// Whether PostgreSQL gave up on the statement after a configured
    /// timeout: `statement_timeout` (57014, also what a cancel request
    /// gives) or `lock_timeout` (55P03). Transient: the lock holder or the
    /// load that made it slow is usually gone by the next try.
    pub fn is_timeout(&self) -> bool {
        self.code()
            .is_some_and(|c| *c == SqlState::QUERY_CANCELED || *c == SqlState::LOCK_NOT_AVAILABLE)
    }

    /// The SQLSTATE, when the server sent one.
    pub fn code(&self) -> Option<&SqlState> {
        match &self.cause {
            Cause::Postgres(e) => e.code(),
            Cause::Pool(deadpool_postgres::PoolError::Backend(e)) => e.code(),
            _ => None,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Postgres(e) => write!(f, "database: {}", describe(e)),
            Cause::Pool(deadpool_postgres::PoolError::Backend(e)) => {
                write!(f, "database: {}", describe(e))
            }
            Cause::Pool(e) => write!(f, "database pool: {e}"),
            Cause::Stored(what) => write!(f, "stored data: {what}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Postgres(e) => Some(e),
            Cause::Pool(e) => Some(e),
            Cause::Stored(_) => None,
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self {
            kind: classify(&e),
            cause: Cause::Postgres(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        let kind = match &e {
            PoolError::Backend(pg) => classify(pg),
            PoolError::Timeout(_) | PoolError::PostCreateHook(_) => ErrorKind::Transient,
            PoolError::Closed | PoolError::NoRuntimeSpecified => ErrorKind::Permanent,
        };
        Self {
            kind,
            cause: Cause::Pool(e),
        }
    }
}

/// A PostgreSQL error with its cause: `tokio_postgres::Error` displays only
/// "db error" and keeps the server's message in its source.
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// The kind of a PostgreSQL error (see [`ErrorKind`]).
pub fn classify(error: &tokio_postgres::Error) -> ErrorKind {
    let Some(code) = error.code() else {
        // No SQLSTATE: an I/O or protocol error, i.e. the connection.
        return ErrorKind::Transient;
    };
    let class = &code.code()[..2];
    if matches!(
        class,
        "08" // connection exception
        | "53" // insufficient resources
        | "57" // operator intervention: admin shutdown, a cancel, statement_timeout
        | "58" // system error
    ) || [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        // lock_timeout: the lock's holder commits or rolls back eventually.
        SqlState::LOCK_NOT_AVAILABLE,
    ]
    .contains(code)
    {
        return ErrorKind::Transient;
    }
    if [
        SqlState::UNIQUE_VIOLATION,
        SqlState::FOREIGN_KEY_VIOLATION,
        SqlState::EXCLUSION_VIOLATION,
    ]
    .contains(code)
    {
        return ErrorKind::Conflict;
    }
    ErrorKind::Permanent
}

/// `Result` of every store function.
pub type StoreResult<T> = Result<T, StoreError>;
