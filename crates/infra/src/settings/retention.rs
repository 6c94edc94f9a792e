//! How long what the service leaves behind is kept, and how the partitions
//! of `processes` are sized (`OBJECTSYNC__RETENTION__…`). The workers'
//! retention sweeper applies it, one worker at a time.

use serde::Deserialize;

/// Retention times, in seconds; 0 keeps forever where it says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// Ended processes (and their rejections) are removed once every
    /// process of their partition ended this long ago; 0 keeps them.
    pub processes_secs: u64,
    /// Dead letters replayed or discarded this long ago are removed; 0
    /// keeps them. Unresolved ones are always kept.
    pub dead_letters_secs: u64,
    /// Webhook deliveries that failed (retries over) this long ago are
    /// removed; 0 keeps them. Pending ones are always kept.
    pub failed_deliveries_secs: u64,
    /// Rows of workers not seen for this long (crashed ones) are removed.
    pub workers_secs: u64,
    /// The span of acceptance time a new partition of `processes` is sized
    /// to hold, at the rate batches are being accepted.
    pub partition_secs: u64,
    /// The fewest process ids a new partition holds, whatever the rate.
    pub partition_min_processes: i64,
    /// How often the sweeper runs.
    pub sweep_secs: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            processes_secs: 30 * 86_400,
            dead_letters_secs: 7 * 86_400,
            failed_deliveries_secs: 30 * 86_400,
            workers_secs: 3_600,
            partition_secs: 86_400,
            partition_min_processes: 1_000_000,
            sweep_secs: 60,
        }
    }
}

impl RetentionSettings {
    /// The shortest retention time accepted: a batch's transaction may
    /// still be running this long after its id was drawn (a slow broker
    /// confirm), and a partition must not be judged before it committed.
    pub const MIN_SECS: u64 = 60;
    /// The largest partition size, in ids: far below where `lo + size`
    /// could overflow a process id.
    pub const MAX_PARTITION_PROCESSES: i64 = 1 << 40;

    /// Every value within its range; the error names the setting.
    pub fn check(&self) -> Result<(), String> {
        let kept = |name: &str, v: u64| {
            if v != 0 && v < Self::MIN_SECS {
                Err(format!(
                    "retention.{name} (OBJECTSYNC__RETENTION__{}) must be 0 (keep) or at least {} seconds, not {v}",
                    name.to_uppercase(),
                    Self::MIN_SECS
                ))
            } else {
                Ok(())
            }
        };
        kept("processes_secs", self.processes_secs)?;
        kept("dead_letters_secs", self.dead_letters_secs)?;
        kept("failed_deliveries_secs", self.failed_deliveries_secs)?;
        for (name, v, min) in [
            ("workers_secs", self.workers_secs, Self::MIN_SECS),
            ("partition_secs", self.partition_secs, 1),
            ("sweep_secs", self.sweep_secs, 1),
        ] {
            if !(min..=365 * 86_400).contains(&v) {
                return Err(format!(
                    "retention.{name} (OBJECTSYNC__RETENTION__{}) must be from {min} to 31536000 seconds, not {v}",
                    name.to_uppercase()
                ));
            }
        }
        if !(1_000..=Self::MAX_PARTITION_PROCESSES).contains(&self.partition_min_processes) {
            return Err(format!(
                "retention.partition_min_processes (OBJECTSYNC__RETENTION__PARTITION_MIN_PROCESSES) \
                 must be from 1000 to {}, not {}",
                Self::MAX_PARTITION_PROCESSES,
                self.partition_min_processes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::tests::env;
    use crate::settings::{Role, Settings};

    #[test]
    fn retention_has_defaults_a_team_would_pick_and_is_checked() {
        let s = Settings::load_from(Role::Worker, None, env(&[])).unwrap();
        assert_eq!(s.retention.processes_secs, 30 * 86_400);
        assert_eq!(s.retention.dead_letters_secs, 7 * 86_400);
        assert_eq!(s.retention.failed_deliveries_secs, 30 * 86_400);
        let s = Settings::load_from(
            Role::Worker,
            None,
            env(&[
                ("OBJECTSYNC__RETENTION__PROCESSES_SECS", "0"),
                ("OBJECTSYNC__RETENTION__SWEEP_SECS", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(s.retention.processes_secs, 0, "0 keeps processes");
        assert_eq!(s.retention.sweep_secs, 5);
        assert_eq!(s.retention.partition_secs, 86_400, "the others keep theirs");
        for (key, value) in [
            ("OBJECTSYNC__RETENTION__PROCESSES_SECS", "59"),
            ("OBJECTSYNC__RETENTION__WORKERS_SECS", "0"),
            ("OBJECTSYNC__RETENTION__SWEEP_SECS", "0"),
            ("OBJECTSYNC__RETENTION__PARTITION_MIN_PROCESSES", "10"),
        ] {
            let e = Settings::load_from(Role::Worker, None, env(&[(key, value)])).unwrap_err();
            assert!(e.to_string().contains(key), "{key}={value}: {e}");
        }
    }
}
