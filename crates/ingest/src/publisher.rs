//! The embeddable `Publisher`: checks a batch, records its process and
//! makes it durable in RabbitMQ, without HTTP.
//!
//! The process row is inserted in a transaction that commits only after the
//! broker has confirmed the persistent message. So a process row exists only
//! for a batch that is on the queue: if the broker or the database fails
//! first, the caller gets an error and nothing is left `queued` forever. The
//! reverse case — a message confirmed but its transaction rolled back — is a
//! message naming a process that never appears; its headers name the
//! transaction, and the worker drops it once PostgreSQL says that
//! transaction aborted.
//!
//! The message body is the request body, verbatim, read by the worker with
//! the same function that checked it here ([`objectsync_model::wire`]).

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation};
use objectsync_infra::{Broker, db, message};
use objectsync_model::{
    ApiCode, BatchMeta, Job, ObjectTypeName, OrgId, ProcessId, ProcessKind, RequestError,
};
use objectsync_store::dead_letters::{self, Resolution};
use objectsync_store::idempotency::Claim;
use objectsync_store::{StoreError, limits, object_types, processes};

use crate::idempotency;
use crate::lanes::RouteError;

/// How long to wait for the broker's confirm before answering 503.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The batch is refused: 4xx, nothing queued.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The organization has `open` processes, its cap: 429, nothing queued.
    #[error("too many open processes: {open}")]
    Backlog { open: i64 },
    /// The dead letter to replay was replayed or discarded meanwhile.
    #[error("this dead letter was already replayed or discarded")]
    AlreadyResolved,
    /// The database cannot take it now (a transient failure, say a
    /// statement timeout): 503, nothing queued.
    #[error(transparent)]
    Database(StoreError),
    /// The broker cannot take it now: 503, nothing queued.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected state: 500, nothing queued.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<RouteError> for PublishError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::Store(e) => e.into(),
            RouteError::Broker(_) => Self::Unavailable(e.to_string()),
        }
    }
}

impl From<StoreError> for PublishError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            Self::Database(e)
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl From<deadpool_postgres::PoolError> for PublishError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::from(e).into()
    }
}

impl From<tokio_postgres::Error> for PublishError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::from(e).into()
    }
}

fn parse_name(object_type: &str) -> Result<ObjectTypeName, PublishError> {
    ObjectTypeName::parse(object_type).map_err(|e| {
        RequestError::invalid(format!("'{object_type}' is not a valid object type: {e}")).into()
    })
}

/// One batch to accept: what an upsert or delete request carries.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    pub org_id: OrgId,
    pub object_type: &'a str,
    pub kind: ProcessKind,
    /// The request body, in the API's JSON shape.
    pub body: &'a [u8],
    /// With a key, a repeat of an accepted request returns the first
    /// request's process id and queues nothing.
    pub idempotency_key: Option<&'a str>,
    /// Carried to the worker's logs.
    pub request_id: Option<&'a str>,
    /// Open processes the organization may have; 0 means no cap.
    pub max_open_processes: i64,
    /// This batch replays a dead letter: the dead letter is marked replayed
    /// in the transaction that creates the process, so a dead letter is
    /// replayed once however many operators click.
    pub replay_of: Option<Replay<'a>>,
}

/// The dead letter a submission replays, and who replays it.
#[derive(Debug, Clone, Copy)]
pub struct Replay<'a> {
    pub dead_letter: i64,
    pub who: &'a str,
}

/// Whether the organization may queue this batch now: its object type
/// exists and, with a cap, it has fewer open processes than the cap. The
/// cap is counted under the organization's backlog lock, held until the
/// transaction ends, so concurrent requests count one another's process.
async fn admit(
    tx: &deadpool_postgres::Transaction<'_>,
    s: &Submission<'_>,
    name: &ObjectTypeName,
) -> Result<(), PublishError> {
    if !object_types::exists(tx, s.org_id, name.as_str()).await? {
        return Err(RequestError::new(ApiCode::DocumentNotFound, "invalid object type").into());
    }
    if s.max_open_processes > 0 {
        limits::lock_backlog(tx, s.org_id).await?;
        let open = limits::open_processes(tx, s.org_id, s.max_open_processes).await?;
        if open >= s.max_open_processes {
            return Err(PublishError::Backlog { open });
        }
    }
    Ok(())
}

/// Validates, records and publishes batches. Cheap to share behind an `Arc`.
pub struct Publisher {
    pool: Pool,
    broker: Arc<Broker>,
    channel: tokio::sync::Mutex<Option<Channel>>,
    /// Plain PostgreSQL or Citus, asked of the database by the first batch.
    engine: tokio::sync::OnceCell<objectsync_store::Engine>,
}

impl Publisher {
    /// A publisher for a Rust producer that embeds objectsync: its own pool
    /// and broker connection, from the same settings as the binaries (see
    /// [`Publisher::submit`]).
    pub fn connect(
        settings: &objectsync_infra::Settings,
    ) -> Result<Self, objectsync_infra::StartupError> {
        let pool = db::pool(&settings.database)?;
        let broker = Arc::new(Broker::new(&settings.amqp, "objectsync-publisher")?);
        Ok(Self::new(pool, broker))
    }

    pub fn new(pool: Pool, broker: Arc<Broker>) -> Self {
        Self {
            pool,
            broker,
            channel: tokio::sync::Mutex::new(None),
            engine: tokio::sync::OnceCell::new(),
        }
    }

    /// The confirm-mode channel, reopened (with the connection if need be)
    /// after the broker went away.
    async fn channel(&self) -> lapin::Result<Channel> {
        let mut cached = self.channel.lock().await;
        if let Some(ch) = cached.as_ref().filter(|c| c.status().connected()) {
            return Ok(ch.clone());
        }
        let conn = self.broker.connection().await?;
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        *cached = Some(ch.clone());
        Ok(ch)
    }

    /// Drops `used` as the publishing channel, if it still is, so that the
    /// next publish opens a fresh one. On a cluster that lost a node, a
    /// channel whose quorum queue lost its leader kept refusing (nack)
    /// every publish to it for seconds after a new leader was elected
    /// (RabbitMQ 3.10: 8 s of 503s in the fault suite's cluster mode), while
    /// a new channel finds the new leader at once.
    async fn forget_channel(&self, used: &Channel) {
        let mut cached = self.channel.lock().await;
        if cached.as_ref().is_some_and(|c| c.id() == used.id())
            && let Some(ch) = cached.take()
        {
            let _ = ch.close(200, "OK".into()).await;
        }
    }

    /// Closes the publishing channel (before the connection, on shutdown).
    pub async fn close(&self) {
        if let Some(ch) = self.channel.lock().await.take() {
            let _ = ch.close(200, "OK".into()).await;
        }
    }

    /// Checks `submission` and returns the new process id once the batch
    /// is durable.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use objectsync_infra::{Role, Settings};
    /// use objectsync_ingest::publisher::{Publisher, Submission};
    /// use objectsync_model::ProcessKind;
    ///
    /// let settings = Settings::load(Role::Ingest, None)?;
    /// let publisher = Publisher::connect(&settings)?;
    /// let body = br#"{"records": [{"identifiers": {"ext_id": "car-1"}}]}"#;
    /// let process_id = publisher
    ///     .submit(Submission {
    ///         org_id: objectsync_model::OrgId(1),
    ///         object_type: "vehicle",
    ///         kind: ProcessKind::Upsert,
    ///         body,
    ///         idempotency_key: None,
    ///         request_id: None,
    ///         max_open_processes: 0,
    ///         replay_of: None,
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(
        skip_all,
        fields(org_id = s.org_id.get(), object_type = s.object_type, kind = s.kind.short(), process_id)
    )]
    pub async fn submit(&self, s: Submission<'_>) -> Result<ProcessId, PublishError> {
        let job = Job::decode(s.kind, s.body)?;
        let name = parse_name(s.object_type)?;
        let claim = match s.idempotency_key {
            Some(key) => Some((
                idempotency::check_key(key)?,
                idempotency::request_hash(&name, &job),
            )),
            None => None,
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Bounds how long this process row can stay uncommitted after its
        // message is published; a worker that meets the message meanwhile
        // waits for it (see the worker's `process::missing`).
        tx.batch_execute("set local idle_in_transaction_session_timeout = '20s'")
            .await?;
        let engine = *self
            .engine
            .get_or_try_init(|| objectsync_store::Engine::detect(&tx))
            .await?;
        admit(&tx, &s, &name).await?;
        let queue = crate::lanes::route(&tx, &self.broker, s.org_id).await?;
        let total = i32::try_from(job.len()).unwrap_or(i32::MAX);
        let footprint = job.footprint(&name);
        let (process_id, xact_id) = processes::insert(
            &tx,
            engine,
            processes::NewProcess {
                org: s.org_id,
                kind: s.kind,
                object_type: name.as_str(),
                total,
                footprint: &footprint,
                queue: &queue,
            },
        )
        .await?;
        tracing::Span::current().record("process_id", process_id.get());
        if let Some((key, hash)) = claim {
            match objectsync_store::idempotency::claim(&tx, s.org_id, key, &hash, process_id)
                .await?
            {
                Claim::Fresh => {}
                // Dropping the transaction discards this request's process row.
                Claim::Replay(previous) => return Ok(previous),
                Claim::Conflict => return Err(idempotency::conflict(key).into()),
            }
        }
        if let Some(r) = s.replay_of {
            let replayed = Resolution::Replayed;
            if !dead_letters::resolve(&tx, r.dead_letter, replayed, r.who, Some(process_id)).await?
            {
                return Err(PublishError::AlreadyResolved);
            }
        }
        let meta = BatchMeta {
            org_id: s.org_id,
            process_id,
            kind: s.kind,
            object_type: name,
            xact_id,
            enqueued_at: chrono::Utc::now(),
            request_id: s.request_id.map(str::to_owned),
        };
        self.publish(&meta, s.body, &queue).await?;
        tx.commit().await?;
        metrics::counter!("objectsync_batches_accepted_total", "kind" => s.kind.name())
            .increment(1);
        tracing::info!(
            process_id = process_id.get(),
            records = total,
            "batch accepted"
        );
        Ok(process_id)
    }

    /// Publishes persistently to `queue` and waits for the broker's confirm.
    async fn publish(
        &self,
        meta: &BatchMeta,
        body: &[u8],
        queue: &str,
    ) -> Result<(), PublishError> {
        let unavailable = |e: lapin::Error| {
            PublishError::Unavailable(format!("broker: {}", objectsync_infra::amqp::describe(&e)))
        };
        let channel = self.channel().await.map_err(unavailable)?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/json"))
            .with_message_id(ShortString::from(meta.process_id.to_string()))
            .with_headers(message::headers(meta))
            .with_timestamp(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0));
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(unavailable)?;
        let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
            .await
            .map_err(|_| PublishError::Unavailable("broker: no confirm in time".into()))?
            .map_err(unavailable)?;
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(PublishError::Unavailable(format!(
                "broker: message returned ({}), is queue '{queue}' declared?",
                returned.reply_text
            ))),
            Confirmation::Nack(_) => {
                self.forget_channel(&channel).await;
                Err(PublishError::Unavailable(
                    "broker: message refused (nack)".into(),
                ))
            }
            Confirmation::NotRequested => Err(PublishError::Internal(
                "publisher confirms are not enabled on the channel".into(),
            )),
        }
    }
}
