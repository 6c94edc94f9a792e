//! What operators look at across organizations: the open backlog, the
//! failures of the last day, and processes found by filter (what ended per
//! minute is `ended`'s). Every statement reads an index range: the open
//! processes (`processes_open_idx`), the failures (`processes_failed_idx`),
//! or one page of processes by id (`processes_id_idx`, the primary key with
//! an organization).

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, ProcessId, ProcessStatus};

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
}

const EXTRA: &str = "org_id, deliveries, last_error, last_delivery_at";

fn row_of(r: &tokio_postgres::Row) -> StoreResult<ProcessRow> {
    let process = processes::from_row(r)?;
    let n = processes::COLUMN_COUNT;
    Ok(ProcessRow {
        org: r.get(n),
        process,
        deliveries: r.get(n + 1),
        last_error: r.get(n + 2),
        last_delivery_at: r.get(n + 3),
    })
}

/// Processes matching `f`, newest first, `limit` of them. The statement is
/// built from the filters given, so each combination gets a plan of its
/// own rather than one generic plan full of `$n is null or …`.
pub async fn search(
    c: &impl GenericClient,
    f: &Filter,
    limit: i64,
) -> StoreResult<Vec<ProcessRow>> {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
    let status = f.status.map(|s| s.as_str());
    // Placeholders are numbered as parameters are added.
    if let Some(org) = &f.org {
        params.push(org);
        clauses.push(format!("org_id = ${}", params.len()));
    }
    if let Some(t) = &f.object_type {
        params.push(t);
        clauses.push(format!("object_type = ${}", params.len()));
    }
    // The status is written into the statement, not passed: a partial
    // index (`processes_failed_idx`, `processes_open_idx`) serves only a
    // statement whose condition names its value.
    if let Some(s) = status {
        clauses.push(format!("status = '{s}'"));
    }
    if let Some(t) = &f.created_after {
        params.push(t);
        clauses.push(format!("created_at >= ${}", params.len()));
    }
    if let Some(t) = &f.created_before {
        params.push(t);
        clauses.push(format!("created_at < ${}", params.len()));
    }
    if let Some(id) = &f.before_id {
        params.push(id);
        clauses.push(format!("id < ${}", params.len()));
    }
    params.push(&limit);
    let limit_param = params.len();
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("where {}", clauses.join(" and "))
    };
    // With an organization the primary key (org_id, id) gives the order;
    // without, processes_id_idx (or processes_failed_idx) does.
    let order = if f.org.is_some() {
        "org_id desc, id desc"
    } else {
        "id desc"
    };
    let sql = format!(
        "select {}, {EXTRA} from processes {filter} order by {order} limit ${limit_param}",
        processes::COLUMNS
    );
    crate::query(c, &sql, &params)
        .await?
        .iter()
        .map(row_of)
        .collect()
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
