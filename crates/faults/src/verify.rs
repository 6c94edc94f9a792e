//! The check after the storm: every accepted batch ended, every record is
//! there once with the values its last accepted batch left (or gone, if
//! that batch deleted it) — acceptance order, not completion order —, and
//! every counter says what applying the batches one by one in acceptance
//! order gives.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::chaos::{Fault, Kind};
use crate::load::{Entry, RECORDS_PER_BATCH, Write, ext_id};

#[derive(Debug, Clone)]
struct Process {
    status: String,
    processed: i32,
    created: i32,
    updated: i32,
    deleted: i32,
    failed: i32,
    error: Option<String>,
    completed_at: Option<DateTime<Utc>>,
}

/// What the suite found.
#[derive(Debug, Default)]
pub struct Findings {
    pub batches_accepted: usize,
    pub completed: usize,
    pub failed: Vec<(i64, String)>,
    pub stuck: Vec<i64>,
    pub records_expected: usize,
    pub records_lost: usize,
    pub records_stale: usize,
    pub records_duplicated: usize,
    pub counter_mismatches: Vec<String>,
    /// Processes no producer was answered with: a batch accepted twice
    /// (an idempotency key that did not find its first process), unless
    /// a producer gave up asking about as many batches (`unanswered`).
    pub unaccounted: Vec<i64>,
    pub unanswered: u64,
    pub latency_ms: Vec<f64>,
    pub recoveries: Vec<Recovery>,
}

/// How the system came back from one restart.
#[derive(Debug)]
pub struct Recovery {
    pub label: String,
    /// Seconds the restart command took.
    pub took: f64,
    /// Probes of ingest's `/readyz` that said "not ready" during the restart.
    pub not_ready_probes: usize,
    /// Seconds from the service being back to the next 202.
    pub first_accept: Option<f64>,
    /// Seconds from the service being back to the first completion of a
    /// batch accepted since.
    pub first_done: Option<f64>,
}

impl Findings {
    /// Whether every guarantee held.
    pub fn passed(&self) -> bool {
        self.stuck.is_empty()
            && self.records_lost == 0
            && self.records_stale == 0
            && self.records_duplicated == 0
            && self.counter_mismatches.is_empty()
            && self.unaccounted.len() as u64 <= self.unanswered
    }
}

/// Waits until no process is queued or in process, up to `limit`.
/// The rows of a parameterless query, or why not.
async fn rows(
    pool: &Pool,
    sql: &str,
) -> Result<Vec<deadpool_postgres::tokio_postgres::Row>, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client.query(sql, &[]).await.map_err(|e| e.to_string())
}

pub(crate) async fn settle(pool: &Pool, limit: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let open: Result<i64, String> = rows(
            pool,
            "select count(*) from processes where status in ('queued', 'in_process')",
        )
        .await
        .map(|r| r[0].get(0));
        match open {
            Ok(0) => return Ok(()),
            Ok(n) if tokio::time::Instant::now() > deadline => {
                return Err(format!("{n} processes still open after {limit:?}"));
            }
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn load_processes(pool: &Pool) -> Result<HashMap<i64, Process>, String> {
    let rows = rows(
        pool,
        "select id, status::text, records_processed, records_created, records_updated,
                records_deleted, records_failed, error, completed_at
           from processes",
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                Process {
                    status: r.get(1),
                    processed: r.get(2),
                    created: r.get(3),
                    updated: r.get(4),
                    deleted: r.get(5),
                    failed: r.get(6),
                    error: r.get(7),
                    completed_at: r.get(8),
                },
            )
        })
        .collect())
}

/// One `ext_id` as stored.
struct Stored {
    rows: i64,
    seq: i64,
    has_note: bool,
}

async fn load_records(pool: &Pool) -> Result<HashMap<String, Stored>, String> {
    let rows = rows(
        pool,
        "select ext_id, count(*), max((attributes->>'seq')::int8), bool_or(attributes ? 'note')
           from records group by ext_id",
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, Option<String>>(0).unwrap_or_default(),
                Stored {
                    rows: r.get(1),
                    seq: r.get::<_, Option<i64>>(2).unwrap_or(-1),
                    has_note: r.get::<_, Option<bool>>(3).unwrap_or(false),
                },
            )
        })
        .collect())
}

/// The counts applying `write` to a range gives, given whether its records
/// exist: (created, updated, deleted, failed).
fn serial_counts(write: Write, exist: bool) -> (i32, i32, i32, i32) {
    let n = RECORDS_PER_BATCH as i32;
    match (write, exist) {
        (Write::Delete, true) => (0, 0, n, 0),
        (Write::Delete, false) => (0, 0, 0, n),
        (_, true) => (0, n, 0, 0),
        (_, false) => (n, 0, 0, 0),
    }
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

pub(crate) async fn check(
    pool: &Pool,
    ledger: &[Entry],
    faults: &[Fault],
    not_ready: &[DateTime<Utc>],
    unanswered: u64,
) -> Result<Findings, String> {
    let processes = load_processes(pool).await?;
    let records = load_records(pool).await?;
    let mut f = Findings {
        batches_accepted: ledger.len(),
        unanswered,
        ..Findings::default()
    };
    let answered: std::collections::HashSet<i64> = ledger.iter().map(|e| e.process_id).collect();
    f.unaccounted = processes
        .keys()
        .filter(|id| !answered.contains(id))
        .copied()
        .collect();
    f.unaccounted.sort_unstable();

    // Per range, the batches in acceptance (processId) order.
    let mut ranges: BTreeMap<(usize, usize), Vec<&Entry>> = BTreeMap::new();
    for e in ledger {
        ranges.entry((e.producer, e.range)).or_default().push(e);
    }
    let mut expected_ext_ids = 0usize;
    for ((producer, range), entries) in &mut ranges {
        entries.sort_by_key(|e| e.process_id);
        let mut exist = false;
        let mut last_completed: Option<&Entry> = None;
        for e in entries.iter() {
            let Some(p) = processes.get(&e.process_id) else {
                f.counter_mismatches
                    .push(format!("process {} is missing", e.process_id));
                continue;
            };
            match p.status.as_str() {
                "completed" => {
                    f.completed += 1;
                    let want = serial_counts(e.write, exist);
                    let got = (p.created, p.updated, p.deleted, p.failed);
                    if p.processed != RECORDS_PER_BATCH as i32 || got != want {
                        f.counter_mismatches.push(format!(
                            "process {} ({:?}): processed {} created/updated/deleted/failed {got:?}, \
                             expected 100 {want:?}",
                            e.process_id, e.write, p.processed
                        ));
                    }
                    if let Some(done) = p.completed_at {
                        f.latency_ms
                            .push((done - e.accepted_at).num_milliseconds().max(0) as f64);
                    }
                    exist = e.write != Write::Delete;
                    last_completed = Some(e);
                }
                "failed" => f
                    .failed
                    .push((e.process_id, p.error.clone().unwrap_or_default())),
                _ => f.stuck.push(e.process_id),
            }
        }
        let Some(last) = last_completed else { continue };
        for i in 0..RECORDS_PER_BATCH {
            let stored = records.get(&ext_id(*producer, *range, i));
            if last.write == Write::Delete {
                if stored.is_some() {
                    f.records_stale += 1;
                }
                continue;
            }
            expected_ext_ids += 1;
            match stored {
                None => f.records_lost += 1,
                Some(s) if s.rows > 1 => f.records_duplicated += (s.rows - 1) as usize,
                Some(s) if s.seq != last.seq as i64 || s.has_note != (last.write == Write::Set) => {
                    f.records_stale += 1;
                }
                Some(_) => {}
            }
        }
    }
    f.records_expected = expected_ext_ids;
    // Records of no range the ledger knows were written by nobody.
    let known: std::collections::HashSet<String> = ranges
        .keys()
        .flat_map(|(p, r)| (0..RECORDS_PER_BATCH).map(move |i| ext_id(*p, *r, i)))
        .collect();
    f.records_duplicated += records.keys().filter(|k| !known.contains(*k)).count();

    // Recovery after each restart, counted from when the service was back:
    // the first 202, and the first completion of a batch accepted since.
    for fault in faults
        .iter()
        .filter(|x| matches!(x.kind, Kind::BrokerRestart | Kind::DatabaseRestart))
    {
        let back = fault.at + chrono::TimeDelta::from_std(fault.took).unwrap_or_default();
        let after: Vec<&Entry> = ledger.iter().filter(|e| e.accepted_at >= back).collect();
        let first_accept = after
            .iter()
            .map(|e| e.accepted_at)
            .min()
            .map(|t| seconds(t - back));
        // An inbox batch's 202 can reach its producer after the batch
        // completed (its first answer went to a reply queue the restart
        // removed): only completions once the service was back count.
        let first_done = after
            .iter()
            .filter_map(|e| processes.get(&e.process_id)?.completed_at)
            .filter(|t| *t >= back)
            .min()
            .map(|t| seconds(t - back));
        let label = match fault.kind {
            Kind::BrokerRestart => "RabbitMQ restart",
            _ => "PostgreSQL restart",
        };
        f.recoveries.push(Recovery {
            label: label.to_owned(),
            took: fault.took.as_secs_f64(),
            not_ready_probes: not_ready
                .iter()
                .filter(|t| **t >= fault.at && **t <= back)
                .count(),
            first_accept,
            first_done,
        });
    }
    Ok(f)
}
