//! CPU time by part of the system during a stage (`crate::cpu::split`).

use serde_json::json;

/// CPU by part of the system: seconds since each process started when
/// read, milliseconds per 1,000-record batch once [`CpuSplit::per_batch`]
/// has scaled a difference of two readings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSplit {
    /// PostgreSQL's backends: the sessions of clients.
    pub postgres: f64,
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
    /// that ended between the readings, the kernel's own work.
    pub other: f64,
}

impl CpuSplit {
    fn parts(&self) -> [(&'static str, f64); 7] {
        [
            ("postgres", self.postgres),
            ("postgres_server", self.postgres_server),
            ("rabbitmq", self.rabbitmq),
            ("ingest", self.ingest),
            ("workers", self.workers),
            ("producers", self.producers),
            ("other", self.other),
        ]
    }

    /// What was spent between reading `start` and this one.
    pub(crate) fn since(&self, start: &CpuSplit) -> CpuSplit {
        CpuSplit {
            postgres: self.postgres - start.postgres,
            postgres_server: self.postgres_server - start.postgres_server,
            rabbitmq: self.rabbitmq - start.rabbitmq,
            ingest: self.ingest - start.ingest,
            workers: self.workers - start.workers,
            producers: self.producers - start.producers,
            other: self.other - start.other,
        }
    }

    /// Seconds spent on `batches` batches, as milliseconds per batch.
    pub(crate) fn per_batch(&self, batches: usize) -> CpuSplit {
        let k = 1000.0 / batches.max(1) as f64;
        CpuSplit {
            postgres: self.postgres * k,
            postgres_server: self.postgres_server * k,
            rabbitmq: self.rabbitmq * k,
            ingest: self.ingest * k,
            workers: self.workers * k,
            producers: self.producers * k,
            other: self.other * k,
        }
    }

    fn total(&self) -> f64 {
        self.parts().iter().map(|(_, v)| v).sum()
    }

    /// "PostgreSQL 21.0 ms (55 %), RabbitMQ …": milliseconds per batch and
    /// shares of the total.
    pub fn describe(&self) -> String {
        let total = self.total().max(f64::MIN_POSITIVE);
        let named = |k: &str| {
            match k {
                "postgres" => "PostgreSQL sessions",
                "postgres_server" => "PostgreSQL's own processes",
                "rabbitmq" => "RabbitMQ",
                other => other,
            }
            .to_owned()
        };
        let parts: Vec<String> = self
            .parts()
            .iter()
            .map(|(k, v)| format!("{} {v:.1} ms ({:.0} %)", named(k), v * 100.0 / total))
            .collect();
        format!("{} of {total:.1} ms", parts.join(", "))
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        for (k, v) in self.parts() {
            o.insert(format!("{k}_ms"), json!((v * 10.0).round() / 10.0));
        }
        serde_json::Value::Object(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_is_scaled_to_milliseconds_per_batch() {
        let start = CpuSplit {
            postgres: 10.0,
            rabbitmq: 1.0,
            ..Default::default()
        };
        let end = CpuSplit {
            postgres: 40.0,
            rabbitmq: 7.0,
            ingest: 3.0,
            ..Default::default()
        };
        let per = end.since(&start).per_batch(300);
        assert_eq!(per.postgres, 100.0);
        assert_eq!(per.rabbitmq, 20.0);
        assert_eq!(per.ingest, 10.0);
        let described = per.describe();
        assert!(
            described.starts_with(
                "PostgreSQL sessions 100.0 ms (77 %), PostgreSQL's own processes 0.0 ms (0 %), \
                 RabbitMQ 20.0 ms (15 %)"
            ),
            "{described}"
        );
        assert_eq!(per.json()["postgres_ms"], 100.0);
    }
}
