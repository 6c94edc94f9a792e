//! What operators look at across organizations: the open backlog, the
//! failures of the last day, and processes found by filter (what ended per
//! minute is `ended`'s). Every statement reads an index range: the open
//! processes (`processes_open_idx`), the failures (`processes_failed_idx`),
//! or one page of processes by id (`processes_id_idx`, the primary key with
//! an organization).

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, ProcessId, ProcessStatus};
use tokio_postgres::types::ToSql;

use crate::processes::{self, Process};
use crate::{GenericClient, StoreResult};

/// Open processes now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub queued: i64,
    pub in_process: i64,
}

/// Processes `queued` and `in_process`, from the index of open processes.
pub async fn backlog(c: &impl GenericClient) -> StoreResult<Backlog> {
    let row = crate::query_one(
        c,
        "select count(*) filter (where status = 'queued'),
                count(*) filter (where status = 'in_process')
           from processes
          where status in ('queued', 'in_process')",
        &[],
    )
    .await?;
    Ok(Backlog {
        queued: row.get(0),
        in_process: row.get(1),
    })
}

/// Failed processes of the last 24 hours with the same reason.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureReason {
    /// The error up to its first colon or semicolon: the details after it
    /// would make every failure a reason of its own.
    pub reason: String,
    pub processes: i64,
    pub last_seen: DateTime<Utc>,
}

pub async fn failures(c: &impl GenericClient) -> StoreResult<Vec<FailureReason>> {
    Ok(crate::query(
        c,
        "select left(split_part(split_part(coalesce(error, 'unknown'), ':', 1), ';', 1), 80),
                count(*), max(completed_at)
           from processes
          where completed_at > now() - interval '24 hours' and status = 'failed'
          group by 1 order by 2 desc, 1 limit 20",
        &[],
    )
    .await?
    .iter()
    .map(|r| FailureReason {
        reason: r.get(0),
        processes: r.get(1),
        last_seen: r.get(2),
    })
    .collect())
}

/// What to find processes by; every field narrows.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub org: Option<OrgId>,
    pub object_type: Option<String>,
    pub status: Option<ProcessStatus>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Keyset paging: processes with a lower id than this.
    pub before_id: Option<ProcessId>,
}

/// A process with what operators need beyond what clients see.
#[derive(Debug, Clone)]
pub struct ProcessRow {
    pub org: OrgId,
    pub process: Process,
    pub deliveries: i32,
    pub last_error: Option<String>,
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// Who failed it by hand (see `ending::fail_by_operator`).
    pub failed_by: Option<String>,
}

const EXTRA: &str = "org_id, deliveries, last_error, last_delivery_at, failed_by";

fn row_of(r: &tokio_postgres::Row) -> StoreResult<ProcessRow> {
    let process = processes::from_row(r)?;
    let n = processes::COLUMN_COUNT;
    Ok(ProcessRow {
        org: r.get(n),
        process,
        deliveries: r.get(n + 1),
        last_error: r.get(n + 2),
        last_delivery_at: r.get(n + 3),
        failed_by: r.get(n + 4),
    })
}

/// A page of processes found by [`search`].
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub rows: Vec<ProcessRow>,
    /// Set when the walk stopped at its bound before the page was full: the
    /// oldest process it looked at. Processes older than this one were not
    /// looked at; searching on with `before_id` set to it continues.
    pub looked_down_to: Option<ProcessId>,
}

/// Processes matching `f`, newest first, `limit` of them.
///
/// The organization, status and keyset conditions are served by indexes
/// (the primary key, `processes_id_idx`, the partial indexes of open and of
/// failed processes). An object type or creation times have no index: the
/// walk checks the newest processes one by one, and looks at `walk` of
/// them at most, so that a filter few processes match costs the same
/// however large the table is; [`Found::looked_down_to`] says where it
/// stopped. Each statement is built from the filters given, so each
/// combination gets a plan of its own rather than one generic plan full of
/// `$n is null or …`.
pub async fn search(
    c: &impl GenericClient,
    f: &Filter,
    limit: i64,
    walk: i64,
) -> StoreResult<Found> {
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let (indexed, checked) = conditions(f, &mut params);
    params.push(&limit);
    let limit_param = params.len();
    // With an organization the primary key (org_id, id) gives the order;
    // without, processes_id_idx (or processes_failed_idx) does.
    let order = if f.org.is_some() {
        "org_id desc, id desc"
    } else {
        "id desc"
    };
    let columns = processes::COLUMNS;
    if checked.is_empty() {
        let sql = format!(
            "select {columns}, {EXTRA} from processes {} order by {order} limit ${limit_param}",
            where_(&indexed)
        );
        let rows = crate::query(c, &sql, &params).await?;
        return Ok(Found {
            rows: rows.iter().map(row_of).collect::<StoreResult<_>>()?,
            looked_down_to: None,
        });
    }
    params.push(&walk);
    let walk_param = params.len();
    // The walk reads the newest `walk` entries of the index and the columns
    // the checks need; only the page's rows are then read whole.
    let walked = format!(
        "select org_id, id, object_type, created_at from processes {} order by {order}
          limit ${walk_param}",
        where_(&indexed)
    );
    // The outer select names the columns of `p` unqualified: `w` has
    // only `lowest` and `n`.
    let sql = format!(
        "with walked as materialized ({walked})
         select {columns}, {EXTRA}, w.lowest, w.n
           from (select min(id) as lowest, count(*) as n from walked) as w
           left join lateral (
                select p.*
                  from walked
                  join processes p using (org_id, id)
                 {}
                 order by walked.id desc
                 limit ${limit_param}) as p on true
          order by p.id desc",
        where_(&checked),
    );
    let rows = crate::query(c, &sql, &params).await?;
    found_in_walk(&rows, limit, walk)
}

/// The conditions of `f`: those an index serves, and those the walk checks
/// process by process. Their parameters are added to `params`, and
/// placeholders numbered as they are.
fn conditions<'a>(
    f: &'a Filter,
    params: &mut Vec<&'a (dyn ToSql + Sync)>,
) -> (Vec<String>, Vec<String>) {
    let mut indexed: Vec<String> = Vec::new();
    let mut checked: Vec<String> = Vec::new();
    if let Some(org) = &f.org {
        params.push(org);
        indexed.push(format!("org_id = ${}", params.len()));
    }
    // The status is written into the statement, not passed: a partial
    // index (`processes_failed_idx`, `processes_open_idx`) serves only a
    // statement whose condition names its value.
    if let Some(s) = f.status.map(|s| s.as_str()) {
        indexed.push(format!("status = '{s}'"));
    }
    if let Some(id) = &f.before_id {
        params.push(id);
        indexed.push(format!("id < ${}", params.len()));
    }
    if let Some(t) = &f.object_type {
        params.push(t);
        checked.push(format!("walked.object_type = ${}", params.len()));
    }
    if let Some(t) = &f.created_after {
        params.push(t);
        checked.push(format!("walked.created_at >= ${}", params.len()));
    }
    if let Some(t) = &f.created_before {
        params.push(t);
        checked.push(format!("walked.created_at < ${}", params.len()));
    }
    (indexed, checked)
}

fn where_(clauses: &[String]) -> String {
    if clauses.is_empty() {
        String::new()
    } else {
        format!("where {}", clauses.join(" and "))
    }
}

/// The page the walk found, and where it stopped if it stopped at its
/// bound before the page was full.
fn found_in_walk(rows: &[tokio_postgres::Row], limit: i64, walk: i64) -> StoreResult<Found> {
    let mut found = Found::default();
    for r in rows {
        // No match at all is one row with the walk's figures and nulls.
        let id: Option<ProcessId> = r.get(0);
        if id.is_some() {
            found.rows.push(row_of(r)?);
        }
    }
    if let Some(r) = rows.first() {
        let walked: i64 = r.get("n");
        if walked == walk && (found.rows.len() as i64) < limit {
            found.looked_down_to = r.get("lowest");
        }
    }
    Ok(found)
}

/// Process `id` of `org` with the operators' columns.
pub async fn process(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
) -> StoreResult<Option<ProcessRow>> {
    let sql = format!(
        "select {}, {EXTRA} from processes where org_id = $1 and id = $2",
        processes::COLUMNS
    );
    crate::query_opt(c, &sql, &[&org, &id])
        .await?
        .as_ref()
        .map(row_of)
        .transpose()
}

/// Processes `queued` or `in_process` per organization that has any, from
/// the index of open processes.
pub async fn open_by_org(c: &impl GenericClient) -> StoreResult<Vec<(OrgId, i64)>> {
    Ok(crate::query(
        c,
        "select org_id, count(*) from processes
          where status in ('queued', 'in_process')
          group by org_id",
        &[],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}
