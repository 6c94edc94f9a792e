//! The `dead_letters` table: every batch the broker dead-lettered, kept in
//! PostgreSQL for operators, who replay or discard it from the console.
//!
//! The dead-letter tracker ([`record`]) writes a row in the transaction that
//! fails the process, so a batch is never failed without its dead letter nor
//! kept without its process failed. A process is dead-lettered at most once;
//! a replay creates a new process, whose own dead letter is a new row.

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, ProcessId, ProcessKind};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;

use crate::{GenericClient, StoreError, StoreResult};

/// What an operator did with a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Sent again as a new process (`replayed_as`).
    Replayed,
    /// Dropped on purpose.
    Discarded,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replayed => "replayed",
            Self::Discarded => "discarded",
        }
    }

    fn parse(text: &str) -> StoreResult<Self> {
        match text {
            "replayed" => Ok(Self::Replayed),
            "discarded" => Ok(Self::Discarded),
            other => Err(StoreError::stored(format!(
                "dead letter resolution '{other}'"
            ))),
        }
    }
}

/// A dead letter to keep: what the tracker knows from the message.
#[derive(Debug, Clone, Copy)]
pub struct NewDeadLetter<'a> {
    /// The organization and process the message names, if it names one.
    pub named: Option<(OrgId, ProcessId)>,
    pub object_type: Option<&'a str>,
    pub kind: Option<ProcessKind>,
    /// Why it was dead-lettered (used when its process did not say).
    pub reason: &'a str,
    /// Deliveries as far as the message tells (the process's own count
    /// wins when it is higher).
    pub deliveries: i32,
    /// The AMQP headers, as JSON.
    pub headers: Option<&'a Value>,
    pub body: &'a [u8],
}

/// A dead letter as the console lists it: everything but the body and the
/// headers.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterSummary {
    pub id: i64,
    pub org_id: Option<OrgId>,
    pub process_id: Option<ProcessId>,
    pub object_type: Option<String>,
    pub kind: Option<ProcessKind>,
    pub reason: String,
    pub deliveries: i32,
    /// Size of the body in bytes.
    pub body_bytes: i32,
    pub dead_at: DateTime<Utc>,
    pub resolution: Option<Resolution>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The process a replay created.
    pub replayed_as: Option<ProcessId>,
}

/// One dead letter in full, for inspecting or replaying it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub summary: DeadLetterSummary,
    pub headers: Option<Value>,
    pub body: Vec<u8>,
}

/// Which dead letters [`list`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Not replayed or discarded yet (what needs an operator).
    Unresolved,
    All,
}

const SUMMARY: &str = "id, org_id, process_id, object_type, kind::text, reason, deliveries,
    octet_length(body), dead_at, resolution, resolved_by, resolved_at, replayed_as";

fn summary(r: &Row) -> StoreResult<DeadLetterSummary> {
    Ok(DeadLetterSummary {
        id: r.get(0),
        org_id: r.get(1),
        process_id: r.get(2),
        object_type: r.get(3),
        kind: r
            .get::<_, Option<&str>>(4)
            .map(|k| k.parse().map_err(StoreError::stored))
            .transpose()?,
        reason: r.get(5),
        deliveries: r.get(6),
        body_bytes: r.get(7),
        dead_at: r.get(8),
        resolution: r
            .get::<_, Option<&str>>(9)
            .map(Resolution::parse)
            .transpose()?,
        resolved_by: r.get(10),
        resolved_at: r.get(11),
        replayed_as: r.get(12),
    })
}

/// Keeps a dead letter, in the caller's transaction (after failing its
/// process, so that the reason is the one the process failed with). What the
/// message cannot say is taken from its process: the kind and type of a
/// message whose headers cannot be read, the deliveries the workers counted
/// (the broker's count is lost when a worker dies on every attempt), and the
/// reason it failed with. Returns `false` if the process already has one.
pub async fn record(tx: &impl GenericClient, d: &NewDeadLetter<'_>) -> StoreResult<bool> {
    let (org, process) = d.named.unzip();
    let kind = d.kind.map(ProcessKind::name);
    let inserted = crate::execute(
        tx,
        "insert into dead_letters
                (org_id, process_id, object_type, kind, reason, deliveries, headers, body)
         select $1, $2, coalesce($3, p.object_type),
                coalesce($4::text::process_name, p.name),
                coalesce(case when p.status = 'failed' then p.error end, $5),
                greatest($6, p.deliveries), $7, $8
           from (select 1) as one
           left join processes p on p.org_id = $1 and p.id = $2
         on conflict (org_id, process_id) where process_id is not null do nothing",
        &[
            &org,
            &process,
            &d.object_type,
            &kind,
            &d.reason,
            &d.deliveries,
            &d.headers,
            &d.body,
        ],
    )
    .await?;
    Ok(inserted > 0)
}

/// Up to `limit` dead letters newest first, those with an id below
/// `before_id` when given (the next page starts below the last id shown).
pub async fn list(
    c: &impl GenericClient,
    filter: Filter,
    before_id: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<DeadLetterSummary>> {
    let which = match filter {
        // The partial index `dead_letters_unresolved_idx`.
        Filter::Unresolved => "resolution is null and",
        Filter::All => "",
    };
    let sql = format!(
        "select {SUMMARY} from dead_letters
          where {which} id < coalesce($1::int8, 9223372036854775807)
          order by id desc limit $2"
    );
    crate::query(c, &sql, &[&before_id, &limit])
        .await?
        .iter()
        .map(summary)
        .collect()
}

/// Dead letter `id`, with its headers and body.
pub async fn get(c: &impl GenericClient, id: i64) -> StoreResult<Option<DeadLetter>> {
    let sql = format!("select {SUMMARY}, headers, body from dead_letters where id = $1");
    let Some(r) = crate::query_opt(c, &sql, &[&id]).await? else {
        return Ok(None);
    };
    Ok(Some(DeadLetter {
        summary: summary(&r)?,
        headers: r.get(13),
        body: r.get(14),
    }))
}

/// Marks dead letter `id` replayed (as process `replayed_as`) or discarded
/// by `who`, only if nobody resolved it yet: returns whether this call did.
/// Two operators racing get one `true`: the second waits for the first's
/// row lock, then finds it resolved. A replay should call this in the
/// transaction that creates the new process, and roll back on `false`.
/// `replayed_as` with [`Resolution::Discarded`] is refused by the table.
pub async fn resolve(
    c: &impl GenericClient,
    id: i64,
    resolution: Resolution,
    who: &str,
    replayed_as: Option<ProcessId>,
) -> StoreResult<bool> {
    let changed = crate::execute(
        c,
        "update dead_letters
            set resolution = $2, resolved_by = $3, resolved_at = now(), replayed_as = $4
          where id = $1 and resolution is null",
        &[&id, &resolution.as_str(), &who, &replayed_as],
    )
    .await?;
    Ok(changed > 0)
}

/// How many dead letters wait for an operator (counted on the partial
/// index of unresolved ones).
pub async fn unresolved_count(c: &impl GenericClient) -> StoreResult<i64> {
    Ok(crate::query_one(
        c,
        "select count(*) from dead_letters where resolution is null",
        &[],
    )
    .await?
    .get(0))
}

/// Removes at most `limit` dead letters replayed or discarded more than
/// `older_than` ago, oldest resolution first (`dead_letters_resolved_idx`);
/// how many. Unresolved ones are never removed.
pub async fn sweep_resolved(
    c: &impl GenericClient,
    older_than: std::time::Duration,
    limit: i64,
) -> StoreResult<u64> {
    crate::execute(
        c,
        "delete from dead_letters
          where id = any(array(
                select id from dead_letters
                 where resolution is not null
                   and resolved_at < now() - make_interval(secs => $1)
                 order by resolved_at limit $2))",
        &[&older_than.as_secs_f64(), &limit],
    )
    .await
}
