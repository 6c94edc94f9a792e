//! The process row: its fields, how it is read, inserted and paged.

use chrono::{DateTime, Utc};
use objectsync_model::report::{AssociationCounts, ProcessInfo, RecordCounts, timestamp};
use objectsync_model::wire::Footprint;
use objectsync_model::{OrgId, ProcessEvent, ProcessId, ProcessKind, ProcessStatus};
use tokio_postgres::Row;

use crate::{Engine, GenericClient, StoreError, StoreResult};

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

impl Process {
    /// Its report: the `info` of `GET /v3/processes/{id}` and of its
    /// completion event.
    pub fn info(&self) -> ProcessInfo {
        let c = self.counts;
        ProcessInfo {
            records: RecordCounts {
                total: self.total,
                processed: c.processed,
                created: c.created,
                updated: c.updated,
                deleted: c.deleted,
                failed: c.failed,
            },
            associations: (self.kind == ProcessKind::Upsert).then_some(AssociationCounts {
                linked: c.links.created,
                unlinked: c.links.removed,
                failed: c.links.failed,
            }),
            error: self.error.clone(),
        }
    }

    /// Its completion event, as organization `org`'s (the process must
    /// have ended for the event to mean anything).
    pub fn event(&self, org: OrgId) -> ProcessEvent {
        ProcessEvent {
            process_id: self.id,
            org_id: org,
            object_type: self.object_type.clone(),
            kind: self.kind.short(),
            status: self.status,
            info: self.info(),
            created_at: timestamp(self.created_at),
            completed_at: self.completed_at.map(timestamp),
        }
    }
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

pub(super) fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> StoreResult<T> {
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
/// gone (see [`crate::order::barrier`]). On Citus the lock and the id are
/// the coordinator's (the `select` and the identity default are evaluated
/// there), and so is the transaction id, asked for in a statement of its
/// own.
pub async fn insert(
    tx: &impl GenericClient,
    engine: Engine,
    p: NewProcess<'_>,
) -> StoreResult<(ProcessId, u64)> {
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
    let id = row.get(0);
    let xact: String = match engine {
        Engine::Postgres => row.get(1),
        Engine::Citus => {
            engine.count_process(tx, p.org).await?;
            crate::query_one(tx, "select pg_current_xact_id()::text", &[])
                .await?
                .get(0)
        }
    };
    let xact = xact
        .parse()
        .map_err(|e| StoreError::stored(format!("transaction id: {e}")))?;
    Ok((id, xact))
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
