//! The embeddable `Publisher`: validates a batch, records its process and
//! makes it durable in RabbitMQ, without HTTP.
//!
//! The process row is inserted in a transaction that commits only after the
//! broker has confirmed the persistent message. So a process row exists only
//! for a batch that is on the queue: if the broker or the database fails
//! first, the caller gets an error and nothing is left `queued` forever. The
//! reverse case — a message confirmed but its transaction not committed —
//! leaves a message naming no process, which the worker drops once it is
//! older than a grace period.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation};
use objectsync_infra::{Broker, db, object_types};
use objectsync_model::{
    ApiCode, Envelope, Job, ObjectTypeName, RawUpsert, RequestError, UpsertBatch,
};

use crate::idempotency::{self, Claim};

/// How long to wait for the broker's confirm before answering 503.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The batch is refused: 4xx, nothing queued.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The database or the broker cannot take it now: 503, nothing queued.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected state: 500, nothing queued.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<tokio_postgres::Error> for PublishError {
    fn from(e: tokio_postgres::Error) -> Self {
        let described = format!("database: {}", db::describe(&e));
        if db::is_transient(&e) {
            Self::Unavailable(described)
        } else {
            Self::Internal(described)
        }
    }
}

impl From<deadpool_postgres::PoolError> for PublishError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(format!("database: {}", db::describe_pool(&e)))
    }
}

impl From<object_types::ObjectTypeError> for PublishError {
    fn from(e: object_types::ObjectTypeError) -> Self {
        match e {
            object_types::ObjectTypeError::Postgres(e) => e.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

fn parse_name(object_type: &str) -> Result<ObjectTypeName, PublishError> {
    ObjectTypeName::parse(object_type).map_err(|e| {
        RequestError::invalid(format!("'{object_type}' is not a valid object type: {e}")).into()
    })
}

/// What kind of process a job makes.
fn process_name(job: &Job) -> &'static str {
    match job {
        Job::Upsert(_) => "OBJECT_RECORDS_UPSERT",
        Job::Delete(_) => "OBJECT_RECORDS_DELETE",
    }
}

/// Validates, records and publishes batches. Cheap to share behind an `Arc`.
pub struct Publisher {
    pool: Pool,
    broker: Arc<Broker>,
    channel: tokio::sync::Mutex<Option<Channel>>,
}

impl Publisher {
    /// A publisher for a Rust producer that embeds objectsync: its own pool
    /// and broker connection, from the same settings as the binaries.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use objectsync_infra::{Role, Settings};
    /// use objectsync_ingest::Publisher;
    /// use objectsync_model::{Job, UpsertBatch};
    ///
    /// let settings = Settings::load(Role::Ingest, None)?;
    /// let publisher = Publisher::connect(&settings)?;
    /// let batch = UpsertBatch::parse(br#"{"records": [{"identifiers": {"ext_id": "car-1"}}]}"#)?;
    /// let process_id = publisher.submit(1, "vehicle", Job::Upsert(batch), None).await?;
    /// # Ok(()) }
    /// ```
    pub fn connect(settings: &objectsync_infra::Settings) -> Result<Self, db::DbError> {
        let pool = db::pool(&settings.database)?;
        let broker = Arc::new(Broker::new(&settings.amqp, "objectsync-publisher"));
        Ok(Self::new(pool, broker))
    }

    pub fn new(pool: Pool, broker: Arc<Broker>) -> Self {
        Self {
            pool,
            broker,
            channel: tokio::sync::Mutex::new(None),
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

    /// Closes the publishing channel (before the connection, on shutdown).
    pub async fn close(&self) {
        if let Some(ch) = self.channel.lock().await.take() {
            let _ = ch.close(200, "OK".into()).await;
        }
    }

    /// Accepts `job` for object type `object_type` of organization `org_id`
    /// and returns the new process id once the batch is durable. With an
    /// idempotency key, a repeat of an accepted request returns the first
    /// request's process id and queues nothing.
    pub async fn submit(
        &self,
        org_id: i64,
        object_type: &str,
        job: Job,
        idempotency_key: Option<&str>,
    ) -> Result<i64, PublishError> {
        let name = parse_name(object_type)?;
        let claim = match idempotency_key {
            Some(key) => Some((
                idempotency::check_key(key)?,
                idempotency::request_hash(&name, &job),
            )),
            None => None,
        };
        let (kind, total) = (process_name(&job), job.len());
        self.accept(org_id, &name, kind, total, claim, |process_id, xact_id| {
            let mut envelope = Envelope::new(process_id, org_id, name.clone(), job);
            envelope.xact_id = xact_id;
            envelope.to_bytes()
        })
        .await
    }

    /// Like [`Publisher::submit`] for an upsert request body, checked and
    /// passed on without rebuilding its records (what the HTTP API uses).
    pub async fn submit_upsert_body(
        &self,
        org_id: i64,
        object_type: &str,
        body: &[u8],
        idempotency_key: Option<&str>,
    ) -> Result<i64, PublishError> {
        let batch = RawUpsert::parse(body)?;
        let name = parse_name(object_type)?;
        let claim = match idempotency_key {
            Some(key) => {
                // The same hash as `submit` gives the parsed batch.
                let parsed = UpsertBatch::from_raw(batch)?;
                let hash = idempotency::request_hash(&name, &Job::Upsert(parsed));
                Some((idempotency::check_key(key)?, hash))
            }
            None => None,
        };
        self.accept(
            org_id,
            &name,
            "OBJECT_RECORDS_UPSERT",
            batch.len,
            claim,
            |process_id, xact_id| {
                Envelope::encode_raw_upsert(process_id, org_id, &name, xact_id, batch)
            },
        )
        .await
    }

    /// The one path of every batch: check the type exists, create the
    /// process, claim the idempotency key, publish `encode(process id,
    /// transaction id)` and wait for the confirm, then commit.
    async fn accept(
        &self,
        org_id: i64,
        object_type: &ObjectTypeName,
        kind: &str,
        total: usize,
        claim: Option<(&str, Vec<u8>)>,
        encode: impl FnOnce(i64, Option<u64>) -> Vec<u8>,
    ) -> Result<i64, PublishError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Bounds how late this process row can commit after its message is
        // published, which is what lets workers drop a message whose process
        // never appears (see `ORPHAN_GRACE` in the worker).
        tx.batch_execute("set local idle_in_transaction_session_timeout = '20s'")
            .await?;
        if !object_types::exists(&*tx, org_id, object_type.as_str()).await? {
            return Err(RequestError::new(ApiCode::DocumentNotFound, "invalid object type").into());
        }
        let total = i32::try_from(total).unwrap_or(i32::MAX);
        let row = tx
            .query_one(
                "insert into processes (org_id, name, object_type, records_total)
                 values ($1, $2::text::process_name, $3, $4)
                 returning id, pg_current_xact_id()::text",
                &[&org_id, &kind, &object_type.as_str(), &total],
            )
            .await?;
        let process_id: i64 = row.get(0);
        let xact_id: Option<u64> = row.get::<_, &str>(1).parse().ok();
        if let Some((key, hash)) = claim {
            match idempotency::claim(&*tx, org_id, key, &hash, process_id).await? {
                Claim::Fresh => {}
                // Dropping the transaction discards this request's process row.
                Claim::Replay(previous) => return Ok(previous),
                Claim::Conflict => return Err(idempotency::conflict(key).into()),
            }
        }
        self.publish(process_id, encode(process_id, xact_id))
            .await?;
        tx.commit().await?;
        metrics::counter!("objectsync_batches_accepted_total", "kind" => kind.to_owned())
            .increment(1);
        tracing::debug!(process_id, org_id, "batch accepted");
        Ok(process_id)
    }

    /// Publishes persistently and waits for the broker's confirm.
    async fn publish(&self, process_id: i64, message: Vec<u8>) -> Result<(), PublishError> {
        let unavailable = |e: lapin::Error| PublishError::Unavailable(format!("broker: {e}"));
        let channel = self.channel().await.map_err(unavailable)?;
        let queue = self.broker.topology().queue.as_str();
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/json"))
            .with_message_id(ShortString::from(process_id.to_string()))
            .with_timestamp(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0));
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &message,
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
            Confirmation::Nack(_) => Err(PublishError::Unavailable(
                "broker: message refused (nack)".into(),
            )),
            Confirmation::NotRequested => Err(PublishError::Internal(
                "publisher confirms are not enabled on the channel".into(),
            )),
        }
    }
}
