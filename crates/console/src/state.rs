//! What the console reads and what it asks of the service it rides on.
//!
//! The console reads the tables itself (`objectsync_store`), but the
//! actions whose rules the admin API shares (failing a process, making an
//! API key) and replaying a dead letter (the publisher's transaction) stay
//! with ingest: the console reaches them through [`Actions`], so it needs
//! no more of ingest than that, and ingest mounts it with [`crate::router`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use deadpool_postgres::Pool;
use objectsync_infra::db::ReadPool;
use objectsync_infra::token_guard::TokenGuard;
use objectsync_model::{OrgId, ProcessId, ProcessKind};

use crate::ConsoleError;
use crate::ended::EndedCache;

/// Everything a console page can reach.
#[derive(Clone)]
pub struct Console {
    /// The primary: sessions, every page but the overview, the actions.
    pub pool: Pool,
    /// The overview's figures, which tolerate a little lag: a hot standby
    /// when `database.read_url` names one, else the primary.
    pub reads: ReadPool,
    /// `None` disables the console (404), as it does the admin API.
    pub admin_token: Option<Arc<str>>,
    /// The queue depths last read by ingest's gauges.
    pub queues: Queues,
    /// How often workers report themselves (`worker.heartbeat_secs`): a
    /// worker not seen for three of these is gone.
    pub worker_heartbeat: Duration,
    /// Wrong admin tokens per client address, shared with the admin API so
    /// that a guesser cannot spend both allowances.
    pub token_guard: Arc<TokenGuard>,
    /// The actions ingest carries out for the console.
    pub actions: Arc<dyn Actions>,
    /// Whether the session cookie is always `Secure` (HTTPS only), not only
    /// behind a proxy that says the request came over HTTPS
    /// (`console.secure_cookie`).
    pub secure_cookie: bool,
    /// The settled minutes of ended processes.
    pub(crate) ended: Arc<EndedCache>,
}

impl Console {
    /// A console over `reads` (its primary for everything but the
    /// overview), whose actions `actions` carries out.
    pub fn new(
        reads: ReadPool,
        admin_token: Option<Arc<str>>,
        worker_heartbeat: Duration,
        token_guard: Arc<TokenGuard>,
        actions: Arc<dyn Actions>,
    ) -> Self {
        Self {
            pool: reads.primary().clone(),
            reads,
            admin_token,
            queues: Queues::default(),
            worker_heartbeat,
            token_guard,
            actions,
            secure_cookie: false,
            ended: Arc::default(),
        }
    }

    /// The same console, with its session cookie always `Secure` or not.
    pub fn with_secure_cookie(mut self, secure: bool) -> Self {
        self.secure_cookie = secure;
        self
    }
}

/// One queue's depth and consumers, as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub name: String,
    pub messages: u32,
    pub consumers: u32,
}

/// The depths last read, for the overview (empty until the first read).
pub type Queues = Arc<RwLock<Vec<QueueDepth>>>;

/// An action's answer, later.
pub type Pending<'a, T, E = ConsoleError> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>>;

/// What the console asks of ingest: actions whose rules live there,
/// shared with the admin API and the publisher.
pub trait Actions: Send + Sync {
    /// Fails an open process of `org` for the operator `who`, with
    /// `reason`. A process that already ended is a `Conflict`.
    fn fail_process<'a>(
        &'a self,
        org: OrgId,
        process: ProcessId,
        who: &'a str,
        reason: &'a str,
    ) -> Pending<'a, ()>;

    /// A new API key of `org`, shown once.
    fn create_key(&self, org: OrgId) -> Pending<'_, String>;

    /// Registers webhook `url` for `org`'s events, by `who`: its id and
    /// its secret (`whsec_…`), shown once. A URL the admin API would
    /// refuse is a `BadRequest` saying why.
    fn create_webhook<'a>(
        &'a self,
        org: OrgId,
        url: &'a str,
        who: &'a str,
    ) -> Pending<'a, (i64, String)>;

    /// Accepts a dead letter's batch again, as a new process after every
    /// batch accepted so far, and marks the dead letter replayed with it.
    fn replay<'a>(&'a self, replay: Replay<'a>) -> Pending<'a, ProcessId, ReplayError>;
}

/// A dead letter to accept again, and who does it.
#[derive(Debug, Clone, Copy)]
pub struct Replay<'a> {
    pub dead_letter: i64,
    pub org: OrgId,
    pub object_type: &'a str,
    pub kind: ProcessKind,
    /// The batch's body, as it was dead-lettered.
    pub body: &'a [u8],
    pub who: &'a str,
}

/// Why a dead letter was not replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The batch is refused as it stands: only discarding it helps.
    #[error("{0}")]
    Refused(String),
    /// Another operator replayed or discarded it first.
    #[error("this dead letter was already replayed or discarded")]
    AlreadyResolved,
    /// The service cannot take it now: trying again may help.
    #[error("{0}")]
    Failed(String),
}
