//! CPU time by part of the system during a pass (`crate::parts`).

use serde_json::json;

/// CPU by part of the system, in milliseconds per 1,000-record batch (in
/// seconds until [`CpuSplit::per_batch`] scales it).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSplit {
    /// PostgreSQL's sessions of ingest (`application_name`
    /// `objectsync-ingest/…`).
    pub postgres_ingest: f64,
    /// PostgreSQL's sessions applying the workers' batches
    /// (`objectsync-worker/apply`).
    pub postgres_workers: f64,
    /// PostgreSQL's sessions of the workers' monitors, event relay,
    /// webhook sender and sweeper (`objectsync-worker/monitors`).
    pub postgres_monitors: f64,
    /// PostgreSQL's other sessions: the bench's own, and any other.
    pub postgres_other: f64,
    /// PostgreSQL's own processes: the WAL writer, the checkpointer, the
    /// background writer and the others without a client.
    pub postgres_server: f64,
    /// Erlang's `beam.smp` and its helpers.
    pub rabbitmq: f64,
    pub ingest: f64,
    pub workers: f64,
    /// The bench itself: the producers.
    pub producers: f64,
    /// The rest of the machine's busy time: other processes, processes
    /// that ended during the pass, the kernel's own work.
    pub other: f64,
}

impl CpuSplit {
    fn parts(&self) -> [(&'static str, &'static str, f64); 10] {
        [
            (
                "postgres_workers",
                "PostgreSQL, the workers' sessions",
                self.postgres_workers,
            ),
            (
                "postgres_monitors",
                "PostgreSQL, the workers' monitors",
                self.postgres_monitors,
            ),
            (
                "postgres_ingest",
                "PostgreSQL, ingest's sessions",
                self.postgres_ingest,
            ),
            (
                "postgres_other",
                "PostgreSQL, other sessions",
                self.postgres_other,
            ),
            (
                "postgres_server",
                "PostgreSQL's own processes",
                self.postgres_server,
            ),
            ("rabbitmq", "RabbitMQ", self.rabbitmq),
            ("ingest", "ingest", self.ingest),
            ("workers", "workers", self.workers),
            ("producers", "producers", self.producers),
            ("other", "other", self.other),
        ]
    }

    /// Seconds spent on `batches` batches, as milliseconds per batch.
    pub(crate) fn per_batch(&self, batches: usize) -> CpuSplit {
        let k = 1000.0 / batches.max(1) as f64;
        CpuSplit {
            postgres_ingest: self.postgres_ingest * k,
            postgres_workers: self.postgres_workers * k,
            postgres_monitors: self.postgres_monitors * k,
            postgres_other: self.postgres_other * k,
            postgres_server: self.postgres_server * k,
            rabbitmq: self.rabbitmq * k,
            ingest: self.ingest * k,
            workers: self.workers * k,
            producers: self.producers * k,
            other: self.other * k,
        }
    }

    /// Every part together.
    pub(crate) fn total(&self) -> f64 {
        self.parts().iter().map(|(_, _, v)| v).sum()
    }

    /// "PostgreSQL, the workers' sessions 21.0 ms (55 %), …": each part in
    /// milliseconds per batch and as a share of the total.
    pub fn describe(&self) -> String {
        let total = self.total().max(f64::MIN_POSITIVE);
        let parts: Vec<String> = self
            .parts()
            .iter()
            // Parts that spent nothing worth a tenth of a millisecond (the
            // services that do not run in a raw pass) are left out.
            .filter(|(_, _, v)| v.abs() >= 0.05)
            .map(|(_, label, v)| format!("{label} {v:.1} ms ({:.0} %)", v * 100.0 / total))
            .collect();
        format!("{} of {total:.1} ms", parts.join(", "))
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        for (k, _, v) in self.parts() {
            o.insert(format!("{k}_ms"), json!((v * 10.0).round() / 10.0));
        }
        serde_json::Value::Object(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_scaled_to_milliseconds_per_batch() {
        let spent = CpuSplit {
            postgres_workers: 30.0,
            rabbitmq: 6.0,
            ingest: 3.0,
            ..Default::default()
        };
        let per = spent.per_batch(300);
        assert_eq!(per.postgres_workers, 100.0);
        assert_eq!(per.rabbitmq, 20.0);
        assert_eq!(per.total(), 130.0);
        let described = per.describe();
        assert!(
            described.starts_with(
                "PostgreSQL, the workers' sessions 100.0 ms (77 %), RabbitMQ 20.0 ms (15 %), \
                 ingest 10.0 ms (8 %) of 130.0 ms"
            ),
            "{described}"
        );
        assert_eq!(per.json()["postgres_workers_ms"], 100.0);
    }
}
