//! The `processes` and `process_errors` tables: the process state machine
//! (`queued → in_process → completed | failed`) and what clients and
//! dashboards read of it.
//!
//! `in_process` is committed on its own as soon as a worker receives a
//! batch, so clients see progress; `completed` is committed with the batch's
//! effects; `failed` when the batch is dead-lettered or its message is lost.
//! A final process never changes again: every transition is guarded by
//! `status in ('queued', 'in_process')`.

use chrono::{DateTime, Utc};
use objectsync_model::wire::Footprint;
use objectsync_model::{OrgId, ProcessId, ProcessKind, ProcessStatus, RejectionCode};
use serde_json::Value;
use tokio_postgres::Row;

use crate::{GenericClient, StoreError, StoreResult};

/// Record outcome counters of a process.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub processed: i32,
    pub created: i32,
    pub updated: i32,
    pub deleted: i32,
    pub failed: i32,
    pub links: LinkCounts,
}

/// Outcome counts of a batch's association entries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkCounts {
    /// Links made.
    pub created: i32,
    /// Links removed.
    pub removed: i32,
    /// Link requests refused (each has an error row).
    pub failed: i32,
}

/// A process as clients read it.
#[derive(Debug, Clone)]
pub struct Process {
    pub id: ProcessId,
    pub kind: ProcessKind,
    pub status: ProcessStatus,
    pub object_type: String,
    pub total: i32,
    pub counts: Counts,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// One rejected record or refused link, as stored.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The record's index in the request.
    pub index: i32,
    /// Its identifiers, as sent.
    pub identifiers: Value,
    pub code: RejectionCode,
    pub message: String,
}

/// One stored rejection as read back.
#[derive(Debug, Clone)]
pub struct StoredRejection {
    pub index: i32,
    pub identifiers: Value,
    pub code: String,
    pub message: String,
}

/// Ascending or descending by id (which is acceptance order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

impl Order {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

/// The columns [`from_row`] reads, in its order.
pub(crate) const COLUMNS: &str = "id, name::text, status::text, object_type, records_total,
    records_processed, records_created, records_updated, records_deleted, records_failed,
    links_created, links_removed, links_failed, error, created_at, started_at, completed_at";

fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> StoreResult<T> {
    text.parse().map_err(StoreError::stored)
}

/// How many columns [`COLUMNS`] names.
pub(crate) const COLUMN_COUNT: usize = 17;

pub(crate) fn from_row(r: &Row) -> StoreResult<Process> {
    Ok(Process {
        id: r.get(0),
        kind: parse(r.get(1))?,
        status: parse(r.get(2))?,
        object_type: r.get(3),
        total: r.get(4),
        counts: Counts {
            processed: r.get(5),
            created: r.get(6),
            updated: r.get(7),
            deleted: r.get(8),
            failed: r.get(9),
            links: LinkCounts {
                created: r.get(10),
                removed: r.get(11),
                failed: r.get(12),
            },
        },
        error: r.get(13),
        created_at: r.get(14),
        started_at: r.get(15),
        completed_at: r.get(16),
    })
}

/// A process to create.
pub struct NewProcess<'a> {
    pub org: OrgId,
    pub kind: ProcessKind,
    pub object_type: &'a str,
    pub total: i32,
    /// What the batch touches (see [`crate::order`]).
    pub footprint: &'a Footprint,
    /// The queue its message goes to (see [`crate::lanes`]).
    pub queue: &'a str,
}

/// A new `queued` process, in the caller's transaction: its id and the id of
/// that transaction (which the message carries, so that a worker can tell a
/// process still coming from one rolled back).
///
/// The id is drawn while the transaction holds the organization's ordering
/// lock in shared mode, until it commits: a worker that takes that lock
/// exclusively knows every lower id of the organization is committed or
/// gone (see [`crate::order::barrier`]).
pub async fn insert(tx: &impl GenericClient, p: NewProcess<'_>) -> StoreResult<(ProcessId, u64)> {
    let (class, key) = crate::order::lock_key(p.org);
    let row = crate::query_one(
        tx,
        "insert into processes (org_id, name, object_type, records_total,
                                footprint_keys, footprint_wide, footprint_links, queue)
         select $1, $2::text::process_name, $3, $4, $5, $6, $7, $10
           from (select pg_advisory_xact_lock_shared($8, $9)) as ordered
         returning id, pg_current_xact_id()::text",
        &[
            &p.org,
            &p.kind.name(),
            &p.object_type,
            &p.total,
            &p.footprint.keys,
            &p.footprint.wide,
            &p.footprint.links,
            &class,
            &key,
            &p.queue,
        ],
    )
    .await?;
    let xact = row
        .get::<_, &str>(1)
        .parse()
        .map_err(|e| StoreError::stored(format!("transaction id: {e}")))?;
    Ok((row.get(0), xact))
}

/// Process `id` of organization `org`, if it exists.
pub async fn get(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
) -> StoreResult<Option<Process>> {
    let sql = format!("select {COLUMNS} from processes where org_id = $1 and id = $2");
    crate::query_opt(c, &sql, &[&org, &id])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// A page of an organization's processes, by id: a deferred join, like
/// [`crate::records::page`], so a deep page skips index entries, not rows.
pub async fn page(
    c: &impl GenericClient,
    org: OrgId,
    order: Order,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<Process>> {
    crate::query(c, &page_sql(order), &[&org, &limit, &offset])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// The statement [`page`] runs, with parameters org, limit and offset:
/// public so that tests can check its plan.
pub fn page_sql(order: Order) -> String {
    // As `records::page_sql`: ids from the primary key in its own order
    // (not from `processes_id_idx`, filtered by organization), then one
    // lookup per id.
    format!(
        "select r.*
           from unnest(array(select id from processes where org_id = $1
                              order by org_id {o}, id {o}
                              limit $2 offset $3)) with ordinality as p(id, n)
          cross join lateral (
                select {COLUMNS} from processes where org_id = $1 and id = p.id limit 1) as r
          order by p.n",
        o = order.sql()
    )
}

/// How many processes an organization has: the sum of its rows in
/// `process_counts`, kept exact by triggers (migration V27).
pub async fn count(c: &impl GenericClient, org: OrgId) -> StoreResult<i64> {
    Ok(crate::query_one(
        c,
        "select coalesce(sum(n), 0)::bigint from process_counts where org_id = $1",
        &[&org],
    )
    .await?
    .get(0))
}

/// Whether process `id` of `org` exists.
pub async fn exists(c: &impl GenericClient, org: OrgId, id: ProcessId) -> StoreResult<bool> {
    Ok(crate::query_opt(
        c,
        "select 1 from processes where org_id = $1 and id = $2",
        &[&org, &id],
    )
    .await?
    .is_some())
}

/// A page of a process's rejections, in record order, and how many it has.
pub async fn rejections(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    limit: i64,
    offset: i64,
) -> StoreResult<(i64, Vec<StoredRejection>)> {
    let rows = crate::query(
        c,
        "select record_index, identifiers, code, message, count(*) over () as total
           from process_errors
          where org_id = $1 and process_id = $2
          order by position
          limit $3 offset $4",
        &[&org, &id, &limit, &offset],
    )
    .await?;
    let total = match rows.first() {
        Some(r) => r.get(4),
        None => crate::query_one(
            c,
            "select count(*) from process_errors where org_id = $1 and process_id = $2",
            &[&org, &id],
        )
        .await?
        .get(0),
    };
    let page = rows
        .iter()
        .map(|r| StoredRejection {
            index: r.get(0),
            identifiers: r.get(1),
            code: r.get(2),
            message: r.get(3),
        })
        .collect();
    Ok((total, page))
}

/// Marks the process `in_process` and records which delivery this is and
/// when it arrived (idempotent, so retries within one delivery do not count
/// twice). A batch that gave its place back arrives as the copy put at the
/// end of its queue then, so `came_round_at` takes that time (see
/// [`crate::waits`]). Returns whether it is open: `false` if no open process
/// is visible (not committed yet, rolled back, or already final).
pub async fn mark_started(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    delivery: i32,
) -> StoreResult<bool> {
    let changed = crate::execute(
        c,
        "update processes
            set status = 'in_process',
                started_at = coalesce(started_at, clock_timestamp()),
                deliveries = greatest(deliveries, $3),
                last_delivery_at = clock_timestamp(),
                came_round_at = gave_way_at
          where org_id = $1 and id = $2 and status in ('queued', 'in_process')",
        &[&org, &id, &delivery],
    )
    .await?;
    Ok(changed > 0)
}

/// The status of a process, if it is visible.
pub async fn status(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
) -> StoreResult<Option<ProcessStatus>> {
    crate::query_opt(
        c,
        "select status::text from processes where org_id = $1 and id = $2",
        &[&org, &id],
    )
    .await?
    .map(|r| parse(r.get(0)))
    .transpose()
}

/// Locks the process row for the rest of the transaction; its status, or
/// `None` if no such process is visible.
pub async fn lock(
    tx: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
) -> StoreResult<Option<ProcessStatus>> {
    crate::query_opt(
        tx,
        "select status::text from processes where org_id = $1 and id = $2 for update",
        &[&org, &id],
    )
    .await?
    .map(|r| parse(r.get(0)))
    .transpose()
}

/// Where the transaction that created a process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XactStatus {
    InProgress,
    Committed,
    /// Rolled back, or too old to know (then its process would be visible).
    Aborted,
}

/// Asks PostgreSQL where transaction `xact` stands.
pub async fn xact_status(c: &impl GenericClient, xact: u64) -> StoreResult<XactStatus> {
    let status: Option<String> = crate::query_one(
        c,
        "select pg_xact_status($1::text::xid8)",
        &[&xact.to_string()],
    )
    .await?
    .get(0);
    Ok(match status.as_deref() {
        Some("in progress") => XactStatus::InProgress,
        Some("committed") => XactStatus::Committed,
        _ => XactStatus::Aborted,
    })
}

/// Stores a batch's rejections, in the order given.
pub async fn write_rejections(
    tx: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    rejections: &[Rejection],
) -> StoreResult<()> {
    if rejections.is_empty() {
        return Ok(());
    }
    let positions: Vec<i32> = (0..).take(rejections.len()).collect();
    let indexes: Vec<i32> = rejections.iter().map(|e| e.index).collect();
    let identifiers: Vec<&Value> = rejections.iter().map(|e| &e.identifiers).collect();
    let codes: Vec<&str> = rejections.iter().map(|e| e.code.as_str()).collect();
    let messages: Vec<&str> = rejections.iter().map(|e| e.message.as_str()).collect();
    crate::execute(
        tx,
        "insert into process_errors
                (org_id, process_id, position, record_index, identifiers, code, message)
         select $1, $2, u.pos, u.idx, u.ids, u.code, u.msg
           from unnest($3::int4[], $4::int4[], $5::jsonb[], $6::text[], $7::text[])
             as u(pos, idx, ids, code, msg)",
        &[
            &org,
            &id,
            &positions,
            &indexes,
            &identifiers,
            &codes,
            &messages,
        ],
    )
    .await
    .map(drop)
}

/// Marks the process `completed` with its counts, in the transaction that
/// applied the batch.
pub async fn complete(
    tx: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    counts: &Counts,
    delivery: i32,
) -> StoreResult<()> {
    crate::execute(
        tx,
        "update processes
            set status = 'completed',
                -- The message can outrun ingest's commit, so mark_started
                -- may have found no row to mark.
                started_at = coalesce(started_at, now()),
                deliveries = greatest(deliveries, $11),
                records_processed = $3,
                records_created = $4,
                records_updated = $5,
                records_deleted = $6,
                records_failed = $7,
                links_created = $8,
                links_removed = $9,
                links_failed = $10,
                completed_at = clock_timestamp(),
                last_error = null,
                footprint_keys = null,
                waiting_for = null
          where org_id = $1 and id = $2",
        &[
            &org,
            &id,
            &counts.processed,
            &counts.created,
            &counts.updated,
            &counts.deleted,
            &counts.failed,
            &counts.links.created,
            &counts.links.removed,
            &counts.links.failed,
            &delivery,
        ],
    )
    .await
    .map(drop)
}

/// Notes why a delivery failed, so that if the batch is later dead-lettered
/// its process says why.
pub async fn record_attempt_error(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    reason: &str,
) -> StoreResult<()> {
    crate::execute(
        c,
        "update processes set last_error = $3
          where org_id = $1 and id = $2 and status in ('queued', 'in_process')",
        &[&org, &id, &reason],
    )
    .await
    .map(drop)
}

/// Marks a process `failed` with `reason`, unless it already ended. Returns
/// whether it changed.
pub async fn fail(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    reason: &str,
) -> StoreResult<bool> {
    fail_with(c, org, id, reason, "$3").await
}

/// Like [`fail`], with the last delivery's failure (if one was recorded)
/// appended to `reason`: for the dead-letter tracker, which knows only that
/// the broker gave up.
pub async fn fail_with_last_error(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    reason: &str,
) -> StoreResult<bool> {
    fail_with(c, org, id, reason, "$3 || coalesce(': ' || last_error, '')").await
}

async fn fail_with(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    reason: &str,
    error_sql: &str,
) -> StoreResult<bool> {
    let sql = format!(
        "update processes
            set status = 'failed', error = {error_sql}, completed_at = clock_timestamp(),
                footprint_keys = null, waiting_for = null
          where org_id = $1 and id = $2 and status in ('queued', 'in_process')"
    );
    Ok(crate::execute(c, &sql, &[&org, &id, &reason]).await? > 0)
}
