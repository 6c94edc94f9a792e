//! The limits every organization gets unless an operator sets its own,
//! and the ranges every limit must lie in, wherever it is set.

use serde::Deserialize;

/// Per-organization limits, overridable per organization (admin API and
/// CLI). A rate of 0 means unlimited.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct LimitSettings {
    /// Batch requests (upsert, delete) per second, sustained.
    pub writes_per_second: f64,
    /// Batch requests that may come at once after a quiet spell.
    pub writes_burst: f64,
    /// Read requests per second, sustained.
    pub reads_per_second: f64,
    /// Read requests that may come at once.
    pub reads_burst: f64,
    /// Open (queued or in process) processes an organization may have
    /// before new batches are refused with 429; 0 means unlimited.
    pub max_open_processes: i64,
}

impl LimitSettings {
    /// No limits at all (benchmarks, and tests that are not about limits).
    pub const UNLIMITED: Self = Self {
        writes_per_second: 0.0,
        writes_burst: 0.0,
        reads_per_second: 0.0,
        reads_burst: 0.0,
        max_open_processes: 0,
    };

    /// Slowest rate a bucket may have, in requests per second (one every
    /// 1,000 s): a slower one would tell refused clients to come back in
    /// hours, or, near 0, in more seconds than a header can say.
    pub const MIN_PER_SECOND: f64 = 0.001;
    /// Fastest rate a bucket may have, in requests per second.
    pub const MAX_PER_SECOND: f64 = 1_000_000.0;
    /// Largest burst: far below 2⁵³, where taking one token from the
    /// bucket would no longer change its count.
    pub const MAX_BURST: f64 = 1_000_000.0;
    /// Largest backlog cap (an organization's own is stored as `int4`).
    pub const MAX_OPEN_PROCESSES: i64 = i32::MAX as i64;

    /// Checks a rate: 0 (no limit) or within
    /// [`MIN_PER_SECOND`](Self::MIN_PER_SECOND)..=[`MAX_PER_SECOND`](Self::MAX_PER_SECOND).
    pub fn check_rate(field: &'static str, v: f64) -> Result<(), InvalidLimit> {
        if v == 0.0 || (Self::MIN_PER_SECOND..=Self::MAX_PER_SECOND).contains(&v) {
            return Ok(());
        }
        Err(InvalidLimit {
            field,
            expected: "must be 0 (no limit) or a number of requests per second from 0.001 to 1000000",
        })
    }

    /// Checks a burst: 1..=[`MAX_BURST`](Self::MAX_BURST).
    pub fn check_burst(field: &'static str, v: f64) -> Result<(), InvalidLimit> {
        if (1.0..=Self::MAX_BURST).contains(&v) {
            return Ok(());
        }
        Err(InvalidLimit {
            field,
            expected: "must be a number of requests from 1 to 1000000",
        })
    }

    /// Checks a backlog cap: 0 (no cap) to
    /// [`MAX_OPEN_PROCESSES`](Self::MAX_OPEN_PROCESSES).
    pub fn check_max_open_processes(field: &'static str, v: i64) -> Result<(), InvalidLimit> {
        if (0..=Self::MAX_OPEN_PROCESSES).contains(&v) {
            return Ok(());
        }
        Err(InvalidLimit {
            field,
            expected: "must be 0 (no cap) or a number of processes from 1 to 2147483647",
        })
    }

    /// Checks every value against its range; a burst may also be 0 when
    /// its rate is 0 (the bucket is off).
    pub fn check(&self) -> Result<(), InvalidLimit> {
        for (rate, burst, rate_field, burst_field) in [
            (
                self.writes_per_second,
                self.writes_burst,
                "writes_per_second",
                "writes_burst",
            ),
            (
                self.reads_per_second,
                self.reads_burst,
                "reads_per_second",
                "reads_burst",
            ),
        ] {
            Self::check_rate(rate_field, rate)?;
            if rate != 0.0 || burst != 0.0 {
                Self::check_burst(burst_field, burst)?;
            }
        }
        Self::check_max_open_processes("max_open_processes", self.max_open_processes)
    }
}

/// A limit out of its range: which, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {expected}")]
pub struct InvalidLimit {
    pub field: &'static str,
    pub expected: &'static str,
}

#[cfg(test)]
mod tests {
    use crate::settings::tests::env;

    use super::LimitSettings;
    use crate::settings::{Role, Settings, SettingsError};

    #[test]
    fn limits_out_of_range_are_refused_at_load_naming_the_setting() {
        for (var, value) in [
            ("OBJECTSYNC__LIMITS__WRITES_PER_SECOND", "1e-300"),
            ("OBJECTSYNC__LIMITS__WRITES_PER_SECOND", "-1"),
            ("OBJECTSYNC__LIMITS__READS_PER_SECOND", "NaN"),
            ("OBJECTSYNC__LIMITS__READS_BURST", "9e18"),
            ("OBJECTSYNC__LIMITS__WRITES_BURST", "0.5"),
            ("OBJECTSYNC__LIMITS__MAX_OPEN_PROCESSES", "-1"),
            ("OBJECTSYNC__LIMITS__MAX_OPEN_PROCESSES", "3000000000"),
        ] {
            let e = Settings::load_from(Role::Ingest, None, env(&[(var, value)]))
                .expect_err(&format!("{var}={value}"));
            assert!(matches!(e, SettingsError::Limit(_)), "{var}={value}: {e}");
            assert!(e.to_string().contains(var), "{e}");
        }
        // A bucket turned off may have a burst of 0; the edges are valid.
        let s = Settings::load_from(
            Role::Ingest,
            None,
            env(&[
                ("OBJECTSYNC__LIMITS__WRITES_PER_SECOND", "0"),
                ("OBJECTSYNC__LIMITS__WRITES_BURST", "0"),
                ("OBJECTSYNC__LIMITS__READS_PER_SECOND", "0.001"),
                ("OBJECTSYNC__LIMITS__READS_BURST", "1000000"),
            ]),
        )
        .unwrap();
        assert_eq!(s.limits.reads_per_second, 0.001);
        assert!(LimitSettings::UNLIMITED.check().is_ok());
    }
}
