//! Applying one batch, exactly once in effect.
//!
//! Everything a batch changes — records, rejections, counters, the
//! `completed` status — is written in one transaction that starts by locking
//! the process row. A redelivered batch whose process is already completed
//! (the worker died after commit, before ack) finds it so and changes
//! nothing; one whose worker died before commit finds nothing of its first
//! attempt, because that transaction never committed.

mod associate;
mod delete;
mod links;
mod plan;
#[cfg(test)]
mod proptests;
mod upsert;

use std::collections::BTreeMap;
use std::sync::Mutex;

use deadpool_postgres::Pool;
use objectsync_model::{BatchMeta, Identifiers, Job, OrgId, ProcessId, RejectionCode};
use objectsync_store::processes::{self, Counts, Rejection, XactStatus};
use objectsync_store::workers::Applying;
use objectsync_store::{GenericClient, ending, object_types, order};
use serde_json::Value;

use crate::error::{Classify, WorkerError};
use crate::gate::{self, Turn};

pub use crate::gate::Footprints;

/// Batches listed for the heartbeat, by ticket. A ticket, not the process
/// id, names an entry: two copies of one batch may be listed at once.
#[derive(Default)]
struct Board(Mutex<(u64, BTreeMap<u64, Applying>)>);

impl Board {
    fn add(&self, org: OrgId, pid: ProcessId) -> u64 {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (next, map) = &mut *guard;
        let ticket = *next;
        *next += 1;
        map.insert(
            ticket,
            Applying {
                org_id: org,
                process_id: pid,
                since: chrono::Utc::now(),
            },
        );
        ticket
    }

    fn remove(&self, ticket: u64) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.remove(&ticket);
    }

    fn list(&self) -> Vec<Applying> {
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.values().copied().collect()
    }
}

/// What the batches one worker process applies share: the footprints it
/// has read, and the slots they are applied in (`worker.prefetch` of them).
/// A batch takes its slot only once its turn has come, so batches waiting
/// for older ones never keep others from being applied.
pub struct Local {
    pub footprints: Footprints,
    slots: tokio::sync::Semaphore,
    /// Batches of the bulk lane line up for a slot one at a time behind
    /// this, so a batch of the express lane, which lines up directly, waits
    /// for the batches holding slots and for one bulk batch at most.
    bulk_turn: tokio::sync::Mutex<()>,
    /// The batches holding a slot: what the heartbeat reports as applying.
    applying: Board,
    /// Every batch received and not acknowledged yet: what the heartbeat
    /// reports as held, so that no message in a worker's hands is taken
    /// for lost.
    holding: Board,
}

impl Local {
    pub fn new(slots: u16) -> Self {
        Self {
            footprints: Footprints::default(),
            slots: tokio::sync::Semaphore::new(usize::from(slots.max(1))),
            bulk_turn: tokio::sync::Mutex::new(()),
            applying: Board::default(),
            holding: Board::default(),
        }
    }

    /// Waits for a slot for the batch of process `pid` (ahead of waiting
    /// bulk batches if it is `express`); the batch shows in
    /// [`Local::applying`] until the slot is dropped.
    pub async fn take_slot(
        &self,
        org: OrgId,
        pid: ProcessId,
        express: bool,
    ) -> Result<Slot<'_>, WorkerError> {
        let permit = if express {
            self.slots.acquire().await.fatal()?
        } else {
            let _turn = self.bulk_turn.lock().await;
            self.slots.acquire().await.fatal()?
        };
        Ok(Slot {
            local: self,
            ticket: self.applying.add(org, pid),
            _permit: permit,
        })
    }

    /// Lists a batch just received in [`Local::holding`] until the returned
    /// guard is dropped (once the delivery is settled).
    pub fn hold(&self, org: OrgId, pid: ProcessId) -> Held<'_> {
        Held {
            local: self,
            ticket: self.holding.add(org, pid),
        }
    }

    /// The batches being applied now, oldest first.
    pub fn applying(&self) -> Vec<Applying> {
        self.applying.list()
    }

    /// Every batch received and not settled yet, oldest first.
    pub fn holding(&self) -> Vec<Applying> {
        self.holding.list()
    }
}

/// A slot held by one batch (see [`Local::take_slot`]); dropping it frees
/// the slot and takes the batch off the list of those being applied.
pub struct Slot<'a> {
    local: &'a Local,
    ticket: u64,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.local.applying.remove(self.ticket);
    }
}

/// A received batch (see [`Local::hold`]); dropping it takes the batch off
/// the list of those held.
pub struct Held<'a> {
    local: &'a Local,
    ticket: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.local.holding.remove(self.ticket);
    }
}

/// Limits the worker applies that come from its settings.
#[derive(Debug, Clone, Copy)]
pub struct ApplyConfig {
    /// Most linked records per associated type on one record.
    pub max_links_per_type: u32,
    /// How long a batch waits for older conflicting batches before it gives
    /// its place back (see `gate`).
    pub order_wait: std::time::Duration,
    /// The batch came through the express queue: it takes a slot ahead of
    /// bulk batches waiting for one (see [`Local::take_slot`]).
    pub express: bool,
    /// Plain PostgreSQL or Citus, where the counts are written here.
    pub engine: objectsync_store::Engine,
}

/// A rejection of record `index`, as stored.
pub(crate) fn rejection(
    index: usize,
    ids: &Identifiers,
    code: RejectionCode,
    message: &str,
) -> Rejection {
    Rejection {
        index: i32::try_from(index).unwrap_or(i32::MAX),
        identifiers: serde_json::to_value(ids).unwrap_or(Value::Null),
        code,
        message: message.to_owned(),
    }
}

/// What applying a job produced.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) counts: Counts,
    pub(crate) rejections: Vec<Rejection>,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Applied now, with these counts.
    Applied(Counts),
    /// Completed or failed before: nothing done.
    AlreadyDone,
    /// The request that queued the batch was rolled back after publishing
    /// (its client got an error), so there is no process and nothing to do.
    Orphan,
    /// Older batches on the same records are not being applied: the batch
    /// gives its place back, to come again later (see `gate`).
    GaveWay,
    /// The message's headers name another organization than its process's:
    /// that process is failed with this reason, nothing is applied, and the
    /// message is dead-lettered.
    Misnamed(String),
}

/// Applies `job`, the batch of process `meta.process_id`, to the database;
/// `delivery` counts from 1 and is recorded on the process.
#[tracing::instrument(
    skip_all,
    name = "apply",
    fields(process_id = meta.process_id.get(), org_id = meta.org_id.get(), delivery)
)]
pub async fn handle(
    pool: &Pool,
    local: &Local,
    meta: &BatchMeta,
    job: &Job<'_>,
    delivery: u32,
    config: ApplyConfig,
) -> Result<Handled, WorkerError> {
    let (org, pid) = (meta.org_id, meta.process_id);
    tracing::Span::current().record("delivery", delivery);
    let delivery = i32::try_from(delivery).unwrap_or(i32::MAX);
    if !start(pool, org, pid, delivery).await? {
        return not_open(&pool.get().await?, meta).await;
    }
    // The same footprint ingest stored: the same function on the same body.
    let mine = job.footprint(&meta.object_type);
    if gate::wait(pool, &local.footprints, meta, &mine, config.order_wait).await? == Turn::GiveWay {
        return Ok(Handled::GaveWay);
    }
    let _slot = local.take_slot(org, pid, config.express).await?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    match processes::lock(&tx, org, pid).await? {
        Some(status) if status.is_final() => return Ok(Handled::AlreadyDone),
        Some(_) => {}
        None => return missing(&tx, meta).await,
    }
    let name = meta.object_type.as_str();
    let object_type = object_types::find(&tx, org, name)
        .await?
        .ok_or_else(|| format!("object type '{name}' no longer exists"))
        .fatal()?;
    let mut applied = match job {
        Job::Upsert(batch) => {
            let mut done = upsert::apply(&tx, config.engine, org, &object_type, batch).await?;
            if batch.records.iter().any(|r| !r.associations.is_empty()) {
                let types = object_types::list(&tx, org).await?;
                let linked = associate::apply(
                    &tx,
                    org,
                    &object_type,
                    &types,
                    batch,
                    &done.record_ids,
                    config.max_links_per_type,
                )
                .await?;
                done.applied.rejections.extend(linked.rejections);
                done.applied.counts.links = linked.counts;
            }
            done.applied
        }
        Job::Delete(batch) => delete::apply(&tx, config.engine, org, &object_type, batch).await?,
    };
    // Record rejections and link refusals, in request order.
    applied.rejections.sort_by_key(|e| e.index);
    processes::write_rejections(&tx, org, pid, &applied.rejections).await?;
    processes::complete(&tx, org, pid, &applied.counts, delivery).await?;
    tx.commit().await?;
    Ok(Handled::Applied(applied.counts))
}

/// Marks the process started; `false` if it is not open. Ingest publishes
/// a batch before it commits its process row, and a worker often has the
/// message first: then the row is waited for (`order::barrier`, the
/// organization's transactions that drew an id before now, this one's
/// among them) and looked for once more, instead of a retry after a pause.
async fn start(
    pool: &Pool,
    org: OrgId,
    pid: ProcessId,
    delivery: i32,
) -> Result<bool, WorkerError> {
    if processes::mark_started(&pool.get().await?, org, pid, delivery).await? {
        return Ok(true);
    }
    // Without a connection while it waits.
    order::barrier(pool, org).await?;
    Ok(processes::mark_started(&pool.get().await?, org, pid, delivery).await?)
}

/// A batch whose process was not open when it arrived: ended before (a
/// redelivery), just made visible (go again, through the gate), or not
/// visible.
async fn not_open(c: &impl GenericClient, meta: &BatchMeta) -> Result<Handled, WorkerError> {
    match processes::status(c, meta.org_id, meta.process_id).await? {
        Some(status) if status.is_final() => Ok(Handled::AlreadyDone),
        Some(_) => Err(WorkerError::NotYet(meta.process_id)),
        None => missing(c, meta).await,
    }
}

/// What to do with a batch whose process row is not visible: wait while the
/// transaction that creates it is still running; drop it once that
/// transaction is known to have rolled back (its client got an error).
/// A process that exists under another organization than the headers name
/// is failed instead: waiting would never make it visible, and the headers
/// must not decide which organization's records the body lands in.
async fn missing(c: &impl GenericClient, meta: &BatchMeta) -> Result<Handled, WorkerError> {
    let status = processes::xact_status(c, meta.xact_id).await?;
    if status == XactStatus::InProgress {
        return Err(WorkerError::NotYet(meta.process_id));
    }
    if let Some(owner) = ending::owner(c, meta.process_id).await?
        && owner != meta.org_id
    {
        let reason = misnamed(meta.org_id, meta.process_id, owner);
        processes::fail(c, owner, meta.process_id, &reason).await?;
        return Ok(Handled::Misnamed(reason));
    }
    match status {
        // Committed means it became visible after our lock query: look again.
        XactStatus::InProgress | XactStatus::Committed => Err(WorkerError::NotYet(meta.process_id)),
        XactStatus::Aborted => Ok(Handled::Orphan),
    }
}

/// Why a message whose headers name organization `named` for process `pid`
/// of organization `owner` was not applied.
pub(crate) fn misnamed(named: OrgId, pid: ProcessId, owner: OrgId) -> String {
    format!(
        "the message names organization {named}, but process {pid} belongs to organization \
         {owner}; nothing was applied to either"
    )
}
