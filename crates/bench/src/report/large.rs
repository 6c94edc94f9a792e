//! The figures of the large-table stage. Kept apart from the others because
//! the stage is optional: when it did not run, none of this is printed.

use serde_json::{Map, Value, json};

/// Latency of one read endpoint over its samples.
#[derive(Debug, Default, Clone, Copy)]
pub struct Latency {
    /// The first request, before the timed ones (cold caches).
    pub first_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers other than 200 (left out of the percentiles).
    pub failed: usize,
}

/// One read endpoint, timed on stale statistics and again after `ANALYZE`.
#[derive(Debug, Clone)]
pub struct ReadFigures {
    /// The key in the JSON output.
    pub name: &'static str,
    /// Path and query as requested.
    pub path: String,
    pub stale: Latency,
    pub analyzed: Latency,
}

#[derive(Debug, Default, Clone)]
pub struct LargeFigures {
    /// Records loaded (the table's size for this object type).
    pub records: usize,
    /// Random-key updates.
    pub updates: usize,
    pub load_rps: f64,
    pub update_rps: f64,
    /// CPU per 1,000-record batch of those updates, by part of the system.
    pub update_cpu: Option<super::CpuSplit>,
    /// The same updates, set-based, straight into `records`.
    pub raw_update_rps: f64,
    pub update_ratio: f64,
    /// Large-table end-to-end updates over the small stage's, when it ran.
    pub update_vs_small: Option<f64>,
    pub reads: Vec<ReadFigures>,
    pub analyze_secs: f64,
    /// Live rows of `records` (every stage's) when its size was taken.
    pub rows: i64,
    /// `pg_total_relation_size('records')` per row.
    pub bytes_per_row: f64,
    /// `pg_relation_size('records')` (the heap alone) per row.
    pub heap_bytes_per_row: f64,
    /// Of the row updates of `records` during the stage's updates (the
    /// statistics' `n_tup_upd`), the share that were HOT (`n_tup_hot_upd`):
    /// the new version on the old one's page, no index entry written.
    pub hot_update_share: f64,
    /// Update batches that waited for an older batch on the same records
    /// (acceptance order), and the seconds they waited in all.
    pub order_wait_batches: u64,
    pub order_wait_secs: f64,
}

fn latency(l: &Latency) -> String {
    let failed = if l.failed > 0 {
        format!(", {} failed", l.failed)
    } else {
        String::new()
    };
    format!(
        "p50 {:.1} ms, p99 {:.1} ms{failed} (first {:.1} ms)",
        l.p50_ms, l.p99_ms, l.first_ms
    )
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

impl LargeFigures {
    /// Table rows, as `(figure, value, target)`.
    pub(crate) fn rows(
        &self,
        workers: usize,
        producers: usize,
        connections: usize,
    ) -> Vec<[String; 3]> {
        let mut rows = vec![
            [
                "large table: records loaded (object type `big`)".into(),
                self.records.to_string(),
                String::new(),
            ],
            [
                format!("large table, load ({workers} workers, {producers} producers)"),
                format!("{:.0} records/s", self.load_rps),
                String::new(),
            ],
            [
                format!(
                    "large table, end to end, {} updates of random existing records",
                    self.updates
                ),
                format!("{:.0} records/s", self.update_rps),
                String::new(),
            ],
            [
                "large table, end to end updates: CPU per 1,000-record batch".into(),
                self.update_cpu.map_or_else(String::new, |c| c.describe()),
                String::new(),
            ],
            [
                format!(
                    "large table, raw ceiling for the same updates (set-based into `records`, {connections} connections)"
                ),
                format!("{:.0} records/s", self.raw_update_rps),
                String::new(),
            ],
            [
                "large table, e2e / raw ceiling, updates".into(),
                format!("{:.2}", self.update_ratio),
                String::new(),
            ],
        ];
        rows.push([
            "large table, update batches that waited for an older one on the same records, and the time waited in all".into(),
            format!(
                "{} of {}, {:.1} s",
                self.order_wait_batches,
                self.updates.div_ceil(crate::data::BATCH),
                self.order_wait_secs
            ),
            String::new(),
        ]);
        rows.push([
            "large table, updates that were HOT (the new row version on its page, no index written)".into(),
            format!("{:.0} %", self.hot_update_share * 100.0),
            String::new(),
        ]);
        if let Some(r) = self.update_vs_small {
            rows.push([
                "large-table / small-table e2e updates".into(),
                format!("{r:.2}"),
                String::new(),
            ]);
        }
        for r in &self.reads {
            rows.push([
                format!("large table, `GET {}`, stale statistics", r.path),
                latency(&r.stale),
                String::new(),
            ]);
            rows.push([
                "… after `ANALYZE`".into(),
                latency(&r.analyzed),
                String::new(),
            ]);
        }
        rows.push([
            "`ANALYZE` of the whole database".into(),
            format!("{:.1} s", self.analyze_secs),
            String::new(),
        ]);
        rows.push([
            format!(
                "bytes per row of `records`, table + indexes + TOAST (over all {} rows, every stage's)",
                self.rows
            ),
            format!("{:.0} bytes", self.bytes_per_row),
            String::new(),
        ]);
        rows.push([
            "bytes per row of `records`, heap alone".into(),
            format!("{:.0} bytes", self.heap_bytes_per_row),
            String::new(),
        ]);
        rows
    }

    /// Adds this stage's figures, prefixed `large_`, to a JSON object.
    pub(crate) fn add_json(&self, o: &mut Map<String, Value>) {
        let mut add = |k: &str, v: Value| {
            o.insert(format!("large_{k}"), v);
        };
        add("records", json!(self.records));
        add("updates", json!(self.updates));
        add("load_rps", json!(self.load_rps.round()));
        add("update_rps", json!(self.update_rps.round()));
        add("raw_update_rps", json!(self.raw_update_rps.round()));
        if let Some(c) = &self.update_cpu {
            add("update_cpu", c.json());
        }
        add("update_ratio", json!(round(self.update_ratio, 3)));
        add("hot_update_share", json!(round(self.hot_update_share, 3)));
        add("order_wait_batches", json!(self.order_wait_batches));
        add("order_wait_secs", json!(round(self.order_wait_secs, 1)));
        if let Some(r) = self.update_vs_small {
            add("update_vs_small", json!(round(r, 3)));
        }
        let reads: Map<String, Value> = self
            .reads
            .iter()
            .map(|r| {
                let v = json!({
                    "path": r.path,
                    "stale_first_ms": round(r.stale.first_ms, 1),
                    "stale_p50_ms": round(r.stale.p50_ms, 1),
                    "stale_p99_ms": round(r.stale.p99_ms, 1),
                    "stale_failed": r.stale.failed,
                    "analyzed_p50_ms": round(r.analyzed.p50_ms, 1),
                    "analyzed_p99_ms": round(r.analyzed.p99_ms, 1),
                    "analyzed_failed": r.analyzed.failed,
                });
                (r.name.to_owned(), v)
            })
            .collect();
        add("reads", Value::Object(reads));
        add("analyze_secs", json!(round(self.analyze_secs, 1)));
        add("rows", json!(self.rows));
        add("bytes_per_row", json!(self.bytes_per_row.round()));
        add("heap_bytes_per_row", json!(self.heap_bytes_per_row.round()));
    }
}
