//! The figures, as a table and as one JSON object; each shows only the
//! stages that ran.

mod cpu;
mod events;
mod large;

use serde_json::json;

pub use cpu::CpuSplit;
pub use events::EventFigures;
pub use large::{LargeFigures, Latency, ReadFigures};

#[derive(Debug, Default, Clone)]
pub struct Figures {
    /// Whether stages 1–6 ran (their figures are zero otherwise).
    pub small_stages: bool,
    /// The large-table stage, when it ran.
    pub large: Option<LargeFigures>,
    /// The events stage (7), when it ran.
    pub events: Option<EventFigures>,
    pub records: usize,
    pub workers: usize,
    pub producers: usize,
    pub connections: usize,
    pub raw_insert_rps: f64,
    pub raw_update_rps: f64,
    /// CPU per 1,000-record batch of the raw ceiling's runs (the bench
    /// itself makes and sends the batches: its "producers").
    pub raw_insert_cpu: Option<CpuSplit>,
    pub raw_update_cpu: Option<CpuSplit>,
    pub naive_insert_rps: f64,
    pub naive_update_rps: f64,
    pub naive_autocommit_insert_rps: f64,
    pub e2e_insert_rps: f64,
    pub e2e_update_rps: f64,
    /// CPU per 1,000-record batch by part of the system, end to end.
    pub e2e_insert_cpu: Option<CpuSplit>,
    pub e2e_update_cpu: Option<CpuSplit>,
    /// Many batches updating the same records at once.
    pub contended_update_rps: f64,
    pub e2e_insert_ratio: f64,
    pub e2e_update_ratio: f64,
    pub e2e_insert_vs_naive: f64,
    pub e2e_update_vs_naive: f64,
    pub ingest_batches_per_s: f64,
    pub ingest_p50_ms: f64,
    pub ingest_p99_ms: f64,
    pub ingest_max_ms: f64,
    pub ingest_half_rate_p99_ms: f64,
    pub lone_batch_ms: f64,
    pub lone_batch_max_ms: f64,
    /// Medians of the lone batches' split: `202` → marked started, and
    /// started → completed.
    pub lone_to_started_ms: f64,
    pub lone_started_to_completed_ms: f64,
    /// Batches the busy organization queued in the fairness stage.
    pub fair_backlog: usize,
    /// Its open batches when the quiet organization's were timed.
    pub fair_open_at_start: i64,
    pub fair_open_at_end: i64,
    /// The quiet organization's lone batch, 202 → completed (its id
    /// collides with the busy one's modulo the bulk queues).
    pub fair_lone_p50_ms: f64,
    pub fair_lone_p99_ms: f64,
    pub fair_lone_max_ms: f64,
    pub ingest_rss_mb: f64,
    pub worker_rss_mb: f64,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Figures {
    pub(crate) fn finish(&mut self) {
        self.e2e_insert_ratio = ratio(self.e2e_insert_rps, self.raw_insert_rps);
        self.e2e_update_ratio = ratio(self.e2e_update_rps, self.raw_update_rps);
        self.e2e_insert_vs_naive = ratio(self.e2e_insert_rps, self.naive_insert_rps);
        self.e2e_update_vs_naive = ratio(self.e2e_update_rps, self.naive_update_rps);
        if let Some(l) = &mut self.large {
            l.update_ratio = ratio(l.update_rps, l.raw_update_rps);
            l.update_vs_small = self
                .small_stages
                .then(|| ratio(l.update_rps, self.e2e_update_rps));
        }
    }

    /// A Markdown table of every figure, with the targets beside them.
    pub fn table(&self) -> String {
        let mut t = String::new();
        if self.small_stages {
            self.small_rows(&mut t);
        }
        if let Some(e) = &self.events {
            for [what, value, target] in e.rows() {
                t.push_str(&format!("| {what} | {value} | {target} |\n"));
            }
        }
        if let Some(l) = &self.large {
            for [what, value, target] in l.rows(self.workers, self.producers, self.connections) {
                t.push_str(&format!("| {what} | {value} | {target} |\n"));
            }
        }
        format!("| figure | value | target |\n|---|---|---|\n{t}")
    }

    /// The CPU splits measured, each with its JSON key and its label.
    fn cpu_splits(&self) -> impl Iterator<Item = (&'static str, &'static str, &CpuSplit)> {
        [
            (
                "raw_insert_cpu",
                "raw ceiling, inserts",
                &self.raw_insert_cpu,
            ),
            (
                "raw_update_cpu",
                "raw ceiling, updates",
                &self.raw_update_cpu,
            ),
            (
                "e2e_insert_cpu",
                "end to end, inserts",
                &self.e2e_insert_cpu,
            ),
            (
                "e2e_update_cpu",
                "end to end, updates",
                &self.e2e_update_cpu,
            ),
        ]
        .into_iter()
        .filter_map(|(key, label, cpu)| cpu.as_ref().map(|c| (key, label, c)))
    }

    /// The rows of stages 1–6.
    fn small_rows(&self, t: &mut String) {
        let mut row = |what: &str, value: String, target: &str| {
            t.push_str(&format!("| {what} | {value} | {target} |\n"));
        };
        row("records per pass", self.records.to_string(), "");
        row(
            "raw ceiling, inserts (set-based, 4 connections)",
            format!("{:.0} records/s", self.raw_insert_rps),
            "",
        );
        row(
            "raw ceiling, updates",
            format!("{:.0} records/s", self.raw_update_rps),
            "",
        );
        row(
            "naive baseline, inserts (a statement per record, a transaction per batch)",
            format!("{:.0} records/s", self.naive_insert_rps),
            "",
        );
        row(
            "naive baseline, updates",
            format!("{:.0} records/s", self.naive_update_rps),
            "",
        );
        row(
            "naive with a transaction per statement, inserts (for reference)",
            format!("{:.0} records/s", self.naive_autocommit_insert_rps),
            "",
        );
        row(
            &format!(
                "end to end, inserts ({} workers, {} producers)",
                self.workers, self.producers
            ),
            format!("{:.0} records/s", self.e2e_insert_rps),
            "",
        );
        row(
            "end to end, updates",
            format!("{:.0} records/s", self.e2e_update_rps),
            "",
        );
        for (_, label, c) in self.cpu_splits() {
            row(
                &format!("{label}: CPU per 1,000-record batch"),
                c.describe(),
                "",
            );
        }
        row(
            "end to end, batches all updating the same 1,000 records",
            format!("{:.0} records/s", self.contended_update_rps),
            "",
        );
        row(
            "e2e / raw ceiling, inserts",
            format!("{:.2}", self.e2e_insert_ratio),
            "≥ 0.6",
        );
        row(
            "e2e / raw ceiling, updates",
            format!("{:.2}", self.e2e_update_ratio),
            "≥ 0.6",
        );
        row(
            "e2e / naive, inserts",
            format!("{:.2}", self.e2e_insert_vs_naive),
            "≥ 3",
        );
        row(
            "e2e / naive, updates",
            format!("{:.2}", self.e2e_update_vs_naive),
            "≥ 3",
        );
        row(
            "ingest alone",
            format!("{:.0} batches/s", self.ingest_batches_per_s),
            "≥ 300",
        );
        row(
            "ingest alone, 202 latency",
            format!(
                "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                self.ingest_p50_ms, self.ingest_p99_ms, self.ingest_max_ms
            ),
            "",
        );
        row(
            "ingest at half that rate, 202 p99",
            format!("{:.1} ms", self.ingest_half_rate_p99_ms),
            "≤ 25 ms",
        );
        row(
            "lone batch, 202 → completed",
            format!(
                "{:.1} ms (max {:.1} ms)",
                self.lone_batch_ms, self.lone_batch_max_ms
            ),
            "≤ 50 ms",
        );
        row(
            &format!(
                "a colliding organization's lone batch while one has {} queued, 202 → completed",
                self.fair_backlog
            ),
            format!(
                "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} → {} still open)",
                self.fair_lone_p50_ms,
                self.fair_lone_p99_ms,
                self.fair_lone_max_ms,
                self.fair_open_at_start,
                self.fair_open_at_end
            ),
            "max ≤ 2 s",
        );
        row(
            "ingest peak RSS under e2e load",
            format!("{:.0} MB", self.ingest_rss_mb),
            "≤ 150 MB",
        );
        row(
            "worker peak RSS under e2e load",
            format!("{:.0} MB", self.worker_rss_mb),
            "≤ 150 MB",
        );
    }

    /// One JSON object with every figure of the stages that ran.
    pub fn json(&self) -> String {
        let mut o = serde_json::Map::new();
        o.insert("workers".into(), json!(self.workers));
        o.insert("producers".into(), json!(self.producers));
        if self.small_stages
            && let serde_json::Value::Object(small) = self.small_json()
        {
            o.extend(small);
            for (key, _, c) in self.cpu_splits() {
                o.insert(key.into(), c.json());
            }
        }
        if let Some(e) = &self.events {
            e.add_json(&mut o);
        }
        if let Some(l) = &self.large {
            l.add_json(&mut o);
        }
        serde_json::Value::Object(o).to_string()
    }

    fn small_json(&self) -> serde_json::Value {
        json!({
            "records": self.records,
            "raw_insert_rps": self.raw_insert_rps.round(),
            "raw_update_rps": self.raw_update_rps.round(),
            "naive_insert_rps": self.naive_insert_rps.round(),
            "naive_update_rps": self.naive_update_rps.round(),
            "naive_autocommit_insert_rps": self.naive_autocommit_insert_rps.round(),
            "e2e_insert_rps": self.e2e_insert_rps.round(),
            "e2e_update_rps": self.e2e_update_rps.round(),
            "contended_update_rps": self.contended_update_rps.round(),
            "e2e_insert_ratio": (self.e2e_insert_ratio * 1000.0).round() / 1000.0,
            "e2e_update_ratio": (self.e2e_update_ratio * 1000.0).round() / 1000.0,
            "e2e_insert_vs_naive": (self.e2e_insert_vs_naive * 100.0).round() / 100.0,
            "e2e_update_vs_naive": (self.e2e_update_vs_naive * 100.0).round() / 100.0,
            "ingest_batches_per_s": self.ingest_batches_per_s.round(),
            "ingest_p50_ms": (self.ingest_p50_ms * 10.0).round() / 10.0,
            "ingest_p99_ms": (self.ingest_p99_ms * 10.0).round() / 10.0,
            "ingest_max_ms": (self.ingest_max_ms * 10.0).round() / 10.0,
            "ingest_half_rate_p99_ms": (self.ingest_half_rate_p99_ms * 10.0).round() / 10.0,
            "lone_batch_ms": (self.lone_batch_ms * 10.0).round() / 10.0,
            "lone_to_started_ms": (self.lone_to_started_ms * 10.0).round() / 10.0,
            "lone_started_to_completed_ms": (self.lone_started_to_completed_ms * 10.0).round() / 10.0,
            "fair_backlog": self.fair_backlog,
            "fair_open_at_start": self.fair_open_at_start,
            "fair_open_at_end": self.fair_open_at_end,
            "fair_lone_p50_ms": self.fair_lone_p50_ms.round(),
            "fair_lone_p99_ms": self.fair_lone_p99_ms.round(),
            "fair_lone_max_ms": self.fair_lone_max_ms.round(),
            "ingest_rss_mb": self.ingest_rss_mb.round(),
            "worker_rss_mb": self.worker_rss_mb.round(),
        })
    }
}
