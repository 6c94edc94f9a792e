//! Progress lines while the suite runs, and the figures at the end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::time::Instant;

use crate::events::EventFindings;
use crate::load::{Ledger, RECORDS_PER_BATCH};
use crate::verify::Findings;

pub(crate) struct Totals {
    pub(crate) posts: u64,
    pub(crate) unavailable: u64,
    pub(crate) transport_errors: u64,
    pub(crate) refused: u64,
    pub(crate) kills: usize,
    pub(crate) ingest_kills: usize,
    pub(crate) inbox_published: u64,
    pub(crate) inbox_republished: u64,
    pub(crate) inbox_kills_mid_message: u64,
    pub(crate) inbox_broker_errors: u64,
    pub(crate) inbox_answered_again: u64,
    pub(crate) fault_errors: Vec<String>,
    pub(crate) elapsed: Duration,
}

impl Totals {
    /// The totals of a run: the ledger's counters and the faults injected.
    pub(crate) fn of(ledger: &Ledger, faults: &[crate::chaos::Fault], elapsed: Duration) -> Self {
        Self {
            posts: ledger.posts.load(Ordering::Relaxed),
            unavailable: ledger.unavailable.load(Ordering::Relaxed),
            transport_errors: ledger.transport_errors.load(Ordering::Relaxed),
            refused: ledger.refused.load(Ordering::Relaxed),
            kills: faults
                .iter()
                .filter(|f| f.kind == crate::chaos::Kind::WorkerKill)
                .count(),
            ingest_kills: faults
                .iter()
                .filter(|f| f.kind == crate::chaos::Kind::IngestKill)
                .count(),
            inbox_published: ledger.inbox_published.load(Ordering::Relaxed),
            inbox_republished: ledger.inbox_republished.load(Ordering::Relaxed),
            inbox_kills_mid_message: ledger.inbox_kills_mid_message.load(Ordering::Relaxed),
            inbox_broker_errors: ledger.inbox_broker_errors.load(Ordering::Relaxed),
            inbox_answered_again: ledger.inbox_answered_again.load(Ordering::Relaxed),
            fault_errors: faults.iter().filter_map(|f| f.error.clone()).collect(),
            elapsed,
        }
    }
}

/// Prints a line every five seconds until aborted.
pub(crate) async fn progress(ledger: Arc<Ledger>, pool: Pool, start: Instant) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    every.tick().await;
    loop {
        every.tick().await;
        let completed = match pool.get().await {
            Ok(c) => c
                .query_one(
                    "select count(*) from processes where status = 'completed'",
                    &[],
                )
                .await
                .map(|r| r.get::<_, i64>(0).to_string())
                .unwrap_or_else(|_| "?".into()),
            Err(_) => "?".into(),
        };
        eprintln!(
            "[faults] {:>5.1}s  posts {}  inbox {}  accepted {}  5xx {}  dropped {}  completed {completed}",
            start.elapsed().as_secs_f64(),
            ledger.posts.load(Ordering::Relaxed),
            ledger.inbox_published.load(Ordering::Relaxed)
                + ledger.inbox_republished.load(Ordering::Relaxed),
            ledger.accepted.load(Ordering::Relaxed),
            ledger.unavailable.load(Ordering::Relaxed),
            ledger.transport_errors.load(Ordering::Relaxed),
        );
    }
}

/// Polls ingest's `/readyz` every 250 ms and notes when it was not ready.
pub(crate) async fn probe_readiness(
    url: String,
    not_ready: Arc<std::sync::Mutex<Vec<chrono::DateTime<chrono::Utc>>>>,
) {
    let client = reqwest::Client::new();
    loop {
        let ready = matches!(
            client.get(&url).timeout(Duration::from_secs(3)).send().await,
            Ok(resp) if resp.status() == 200
        );
        if !ready {
            not_ready
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(chrono::Utc::now());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "never".into(), |s| format!("{s:.1} s"))
}

pub(crate) fn print(t: &Totals, f: &Findings, settle: Option<&String>, shutdown: &[String]) {
    let mut latency = f.latency_ms.clone();
    latency.sort_by(f64::total_cmp);
    println!();
    println!("objectsync fault suite — {:.0} s", t.elapsed.as_secs_f64());
    println!("  requests sent            {}", t.posts);
    if t.inbox_published > 0 {
        println!(
            "  inbox messages           {} ({} published again after no answer in time; \
             {} answers to a message answered already; {} connections to the broker failed)",
            t.inbox_published, t.inbox_republished, t.inbox_answered_again, t.inbox_broker_errors
        );
    }
    println!("  answered 5xx (retried)   {}", t.unavailable);
    println!("  dropped connections      {}", t.transport_errors);
    println!("  refused 4xx              {}", t.refused);
    println!(
        "  batches accepted (202)   {} ({} records)",
        f.batches_accepted,
        f.batches_accepted * RECORDS_PER_BATCH
    );
    println!("  processes completed      {}", f.completed);
    println!("  processes failed         {}", f.failed.len());
    for (id, why) in f.failed.iter().take(10) {
        println!("    process {id}: {why}");
    }
    println!("  processes stuck          {}", f.stuck.len());
    println!("  records expected         {}", f.records_expected);
    println!("  records lost             {}", f.records_lost);
    println!(
        "  records stale            {} (values of an earlier batch, or present after a delete)",
        f.records_stale
    );
    println!("  records duplicated       {}", f.records_duplicated);
    println!(
        "  processes unaccounted    {}{} (no producer was answered with them)",
        f.unaccounted.len(),
        match f.unanswered {
            0 => String::new(),
            n => format!(", {n} batches whose producer gave up asking"),
        }
    );
    for id in f.unaccounted.iter().take(10) {
        println!("    process {id}");
    }
    println!("  counter mismatches       {}", f.counter_mismatches.len());
    for m in f.counter_mismatches.iter().take(10) {
        println!("    {m}");
    }
    println!(
        "  202 → completed          p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latency, 0.5),
        percentile(&latency, 0.99),
        latency.last().copied().unwrap_or(0.0)
    );
    println!("  workers SIGKILLed        {}", t.kills);
    if t.inbox_published > 0 {
        println!(
            "  inbox ingest SIGKILLed   {} ({} with a message between its publication and its answer)",
            t.ingest_kills, t.inbox_kills_mid_message
        );
    }
    for r in &f.recoveries {
        println!(
            "  {:<24} down for {:.1} s, /readyz said not ready {} times; once back: next 202 after {}, a batch accepted since completed after {}",
            r.label,
            r.took,
            r.not_ready_probes,
            secs(r.first_accept),
            secs(r.first_done)
        );
    }
    for e in &t.fault_errors {
        println!("  fault injection error: {e}");
    }
    if let Some(e) = settle {
        println!("  not settled: {e}");
    }
    if shutdown.is_empty() {
        println!(
            "  graceful shutdown        every worker (and ingest replica) exited 0 on SIGTERM"
        );
    } else {
        for s in shutdown {
            println!("  graceful shutdown        {s}");
        }
    }
}

pub(crate) fn print_events(f: &EventFindings) {
    println!(
        "  events received          {} ({} copies of an event already received)",
        f.received, f.copies
    );
    println!(
        "  ended without an event   {}{}",
        f.missing.len(),
        list(&f.missing)
    );
    println!(
        "  ended with two event ids {}{}",
        f.doubled.len(),
        list(&f.doubled)
    );
    println!("  events wrong             {}", f.wrong.len());
    for w in f.wrong.iter().take(10) {
        println!("    {w}");
    }
    if f.unpublished != 0 {
        println!("  events never published   {}", f.unpublished);
    }
}

fn list(ids: &[i64]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = ids.iter().take(10).map(ToString::to_string).collect();
    format!(" (processes {})", shown.join(", "))
}

/// The cluster's figures: how it was formed, then per killed node how
/// long until every queue had a leader again, how long producers got 5xx
/// answers (from the kill to the last one before the next node fault), and
/// how the node came back.
pub(crate) fn print_cluster(
    formed: &crate::cluster::Formed,
    faults: &[crate::node_faults::NodeFault],
    unavailable_at: &[chrono::DateTime<chrono::Utc>],
) {
    println!("  RabbitMQ cluster         {}", formed.describe());
    for (i, f) in faults.iter().enumerate() {
        if let Some(e) = &f.error {
            println!("  node fault error         {e}");
        }
        let until = faults.get(i + 1).map(|next| next.killed_at);
        let seen: Vec<_> = unavailable_at
            .iter()
            .filter(|t| **t >= f.killed_at && until.is_none_or(|u| **t < u))
            .collect();
        let window = seen.iter().max().map_or(0.0, |last| {
            (**last - f.killed_at).num_milliseconds() as f64 / 1000.0
        });
        let secs = |d: Option<Duration>| {
            d.map_or_else(|| "never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
        };
        println!(
            "  node {} SIGKILLed (leader of {} of {} queues): every queue led again after {}; \
             producers saw 5xx for {window:.1} s ({} answers); restarted in {:.1} s, every \
             replica online {} after the restart",
            f.node,
            f.led,
            f.queues,
            secs(f.leaders_back),
            seen.len(),
            f.restart_took.as_secs_f64(),
            secs(f.replicas_back),
        );
    }
}
