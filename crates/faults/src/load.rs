//! The producers: sustained batches through the real HTTP API, each one
//! written down in a ledger once it got its `202`.
//!
//! Every producer owns `ranges` ranges of 100 records and writes them in
//! turn, without waiting for earlier batches to be applied, so that many
//! batches on the same records are in flight at once. A batch stamps its
//! sequence number into every record of its range and sets its note (most
//! batches) or clears it; now and then a batch deletes the whole range
//! (never twice in a row), and the next one creates it again. Acceptance
//! order decides the outcome: the range must end as its last accepted
//! batch left it. Requests that fail (503 during an outage, a dropped
//! connection) are retried with the same `Idempotency-Key` until they get
//! an answer, as a careful client would.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use objectsync_testkit::Org;
use serde_json::{Value, json};

pub(crate) const RECORDS_PER_BATCH: usize = 100;

/// What a batch does to its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// Sets `seq` and the note.
    Set,
    /// Sets `seq` and clears the note.
    Clear,
    /// Deletes the records.
    Delete,
}

impl Write {
    /// The write of batch `seq` to a range whose previous write was `last`.
    fn choose(seq: u64, last: Option<Write>) -> Self {
        match seq % 7 {
            3 if last != Some(Write::Delete) => Write::Delete,
            1 | 5 => Write::Clear,
            _ => Write::Set,
        }
    }
}

/// One accepted batch.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) producer: usize,
    pub(crate) range: usize,
    pub(crate) seq: u64,
    pub(crate) write: Write,
    pub(crate) process_id: i64,
    pub(crate) accepted_at: DateTime<Utc>,
}

#[derive(Default)]
pub(crate) struct Ledger {
    pub(crate) entries: Mutex<Vec<Entry>>,
    pub(crate) posts: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    /// When each 5xx answer came (how long producers saw them).
    pub(crate) unavailable_at: Mutex<Vec<DateTime<Utc>>>,
    pub(crate) transport_errors: AtomicU64,
    pub(crate) refused: AtomicU64,
    /// Batches whose producer gave up asking (30 s past the deadline): one
    /// may have been accepted without the ledger knowing.
    pub(crate) unanswered: AtomicU64,
    /// Inbox messages published for the first time, and again after no
    /// answer came in time.
    pub(crate) inbox_published: AtomicU64,
    pub(crate) inbox_republished: AtomicU64,
    /// Inbox messages published and not answered yet.
    pub(crate) inbox_in_flight: AtomicU64,
    /// Kills of the inbox's replica while a message was in flight.
    pub(crate) inbox_kills_mid_message: AtomicU64,
    /// Inbox connections that could not be opened or broke (the broker
    /// was away).
    pub(crate) inbox_broker_errors: AtomicU64,
    /// Inbox answers to a message answered already.
    pub(crate) inbox_answered_again: AtomicU64,
}

impl Ledger {
    /// When each 5xx answer came.
    pub(crate) fn unavailable_at(&self) -> Vec<DateTime<Utc>> {
        self.unavailable_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn snapshot(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// When the load stops: the end of the run's duration, or later while
/// something holds it open (the cluster's node faults, which must happen
/// under load however long a node takes to come back).
pub(crate) struct Deadline(Mutex<tokio::time::Instant>);

impl Deadline {
    pub(crate) fn new(at: tokio::time::Instant) -> Self {
        Self(Mutex::new(at))
    }

    pub(crate) fn get(&self) -> tokio::time::Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set(&self, at: tokio::time::Instant) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

/// `ext_id` of record `i` of `range` of `producer`.
pub(crate) fn ext_id(producer: usize, range: usize, i: usize) -> String {
    format!("p{producer}-r{range}-{i}")
}

/// The path and body of batch `seq` of a range.
fn batch(producer: usize, range: usize, seq: u64, write: Write) -> (&'static str, Value) {
    let exts = (0..RECORDS_PER_BATCH).map(|i| ext_id(producer, range, i));
    if write == Write::Delete {
        let exts: Vec<String> = exts.collect();
        return ("delete", json!({"identifiers": {"ext_ids": exts}}));
    }
    let note = match write {
        Write::Set => json!(format!("written by batch {seq} of producer {producer}")),
        _ => Value::Null,
    };
    let records: Vec<Value> = exts
        .enumerate()
        .map(|(i, ext)| {
            json!({
                "identifiers": {"ext_id": ext},
                "attributes": {"name": format!("item {i} of range {range}"), "seq": seq, "note": note}
            })
        })
        .collect();
    ("upsert", json!({ "records": records }))
}

pub(crate) struct Producer<'a> {
    pub(crate) id: usize,
    pub(crate) ranges: usize,
    pub(crate) base: &'a str,
    pub(crate) org: &'a Org,
    pub(crate) client: &'a reqwest::Client,
    pub(crate) ledger: &'a Ledger,
}

/// Producer `producer`'s batches until the deadline, in turn over its
/// `ranges` (see the module's comment), each sent by `send` (its action,
/// its body and its sequence number, to the process id it was accepted as,
/// or `None` to stop) only after the one before was accepted, and written
/// in the ledger.
pub(crate) async fn write_ranges(
    producer: usize,
    ranges: usize,
    ledger: &Ledger,
    until: &Deadline,
    mut send: impl AsyncFnMut(&'static str, String, u64) -> Option<i64>,
) {
    let mut last: Vec<Option<Write>> = vec![None; ranges];
    let mut seq: u64 = 0;
    while tokio::time::Instant::now() < until.get() {
        let range = (seq as usize) % ranges;
        let write = Write::choose(seq / ranges as u64, last[range]);
        let (action, body) = batch(producer, range, seq, write);
        let Some(process_id) = send(action, body.to_string(), seq).await else {
            break;
        };
        ledger
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Entry {
                producer,
                range,
                seq,
                write,
                process_id,
                accepted_at: Utc::now(),
            });
        last[range] = Some(write);
        seq += 1;
    }
}

impl Producer<'_> {
    /// Sends batches until the deadline.
    pub(crate) async fn run(&self, until: &Deadline) {
        write_ranges(
            self.id,
            self.ranges,
            self.ledger,
            until,
            async |action, body, seq| {
                let key = format!("faults-p{}-{seq}", self.id);
                self.post(action, &body, &key, until).await
            },
        )
        .await;
    }

    /// Posts until a definite answer; `None` if the load period ended first.
    async fn post(&self, action: &str, body: &str, key: &str, until: &Deadline) -> Option<i64> {
        loop {
            // A request already sent may still be accepted after the
            // deadline: keep asking a while longer so that it lands in the
            // ledger.
            let give_up = until.get() + Duration::from_secs(30);
            self.ledger.posts.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .client
                .post(format!("{}/v3/objects/item/batch/{action}", self.base))
                .header("api-key", &self.org.key)
                .header("Idempotency-Key", key)
                .header("content-type", "application/json")
                .body(body.to_owned())
                .timeout(Duration::from_secs(15))
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status() == 202 => {
                    let v: Value = resp.json().await.ok()?;
                    self.ledger.accepted.fetch_add(1, Ordering::Relaxed);
                    return v["processId"].as_i64();
                }
                Ok(resp) if resp.status().is_server_error() => {
                    self.ledger.unavailable.fetch_add(1, Ordering::Relaxed);
                    self.ledger
                        .unavailable_at
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Utc::now());
                }
                Ok(resp) => {
                    // A 4xx is a bug in the suite or the service: count it, stop.
                    self.ledger.refused.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "unexpected answer {}: {}",
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    );
                    return None;
                }
                Err(_) => {
                    self.ledger.transport_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            if tokio::time::Instant::now() > give_up {
                self.ledger.unanswered.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
