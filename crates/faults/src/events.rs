//! The events' part of the ledger: every process that ended published
//! exactly one event (one event id; copies of it after a crash are
//! counted, not faulted) with its final status on `{prefix}.events`,
//! through worker kills and broker restarts, and none was published for a
//! process that did not end. A durable queue of the suite's own
//! (`objectsync_testkit::events::EventTap`), bound before the load starts,
//! keeps every event through the restarts.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use deadpool_postgres::Pool;
use objectsync_testkit::events::{Event, EventTap};

/// What the events showed.
#[derive(Debug, Default)]
pub struct EventFindings {
    /// Events read off the queue (copies included).
    pub received: usize,
    /// Copies of an event already received (same id): at-least-once.
    pub copies: usize,
    /// Ended processes with no event.
    pub missing: Vec<i64>,
    /// Ended processes with more than one event id.
    pub doubled: Vec<i64>,
    /// Events naming a process that did not end, or with another status
    /// than its process's, or that cannot be read.
    pub wrong: Vec<String>,
    /// Events still in the outbox after the settle.
    pub unpublished: i64,
}

impl EventFindings {
    pub fn passed(&self) -> bool {
        self.missing.is_empty()
            && self.doubled.is_empty()
            && self.wrong.is_empty()
            && self.unpublished == 0
    }
}

/// Waits (up to `limit`) until the outbox is empty: every event of an
/// ended process was published and confirmed.
pub(crate) async fn wait_for_outbox(pool: &Pool, limit: Duration) -> i64 {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = match pool.get().await {
            Ok(c) => objectsync_store::events::backlog(&c).await.unwrap_or(-1),
            Err(_) => -1,
        };
        if left == 0 || tokio::time::Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads the tap until two reads in a row bring nothing.
pub(crate) async fn collect(tap: &EventTap) -> Result<Vec<Event>, String> {
    let mut all = Vec::new();
    let mut quiet = 0;
    while quiet < 2 {
        let got = tap.drain().await.map_err(|e| e.to_string())?;
        quiet = if got.is_empty() { quiet + 1 } else { 0 };
        all.extend(got);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(all)
}

/// Holds `events` against the processes of the database.
pub(crate) async fn check(
    pool: &Pool,
    events: &[Event],
    unpublished: i64,
) -> Result<EventFindings, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let rows = client
        .query("select id, status::text from processes", &[])
        .await
        .map_err(|e| e.to_string())?;
    let status: HashMap<i64, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut f = EventFindings {
        received: events.len(),
        unpublished,
        ..EventFindings::default()
    };
    let mut ids: HashMap<i64, BTreeSet<String>> = HashMap::new();
    let mut seen = BTreeSet::new();
    for e in events {
        let (Some(pid), Some(id)) = (e.body["processId"].as_i64(), e.message_id.clone()) else {
            f.wrong.push(format!("unreadable event: {e:?}"));
            continue;
        };
        if !seen.insert(id.clone()) {
            f.copies += 1;
            continue;
        }
        let said = e.body["status"].as_str().unwrap_or_default();
        match status.get(&pid).map(String::as_str) {
            Some(s @ ("completed" | "failed")) if s == said => {}
            other => f.wrong.push(format!(
                "event {id} says process {pid} is {said}; the process is {other:?}"
            )),
        }
        ids.entry(pid).or_default().insert(id);
    }
    for (pid, s) in &status {
        if s != "completed" && s != "failed" {
            continue;
        }
        match ids.get(pid).map(BTreeSet::len) {
            None | Some(0) => f.missing.push(*pid),
            Some(1) => {}
            Some(_) => f.doubled.push(*pid),
        }
    }
    f.missing.sort_unstable();
    f.doubled.sort_unstable();
    Ok(f)
}
