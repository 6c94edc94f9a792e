//! How far a read standby is behind its primary, in time, so that the
//! lag-tolerant reads leave a standby that fell too far behind
//! (`database.read_max_lag_ms`) for the primary until it catches up.
//!
//! Measured by WAL position, not by `pg_last_xact_replay_timestamp()`:
//! that timestamp stands still while the primary is idle, which would
//! make a standby that holds everything look ever further behind. Every
//! tick the watcher reads the primary's WAL insert position (noting when
//! it asked; every commit made before then lies at or before it, an
//! asynchronous one too), then the standby's replay position; the standby
//! holds every write the primary committed before the newest noted time
//! whose position it has replayed, so its lag is at most now minus that
//! time. A read on a standby in use therefore misses no write committed
//! more than the maximum lag plus one tick before it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The primary's WAL positions noted by the watcher, oldest first.
#[derive(Debug, Default)]
pub(super) struct Marks {
    marks: VecDeque<(Instant, i64)>,
}

impl Marks {
    /// Notes that the primary's WAL was at `position` (or further) at `at`.
    /// Keeps at most `keep` marks: the oldest go first.
    pub(super) fn push(&mut self, at: Instant, position: i64, keep: usize) {
        self.marks.push_back((at, position));
        while self.marks.len() > keep.max(1) {
            self.marks.pop_front();
        }
    }

    /// The lag at `now` of a standby that has replayed up to `replayed`:
    /// the age of the newest mark it has reached (older marks are dropped,
    /// they can never be the answer again), or, when it has reached none,
    /// at least the age of the oldest mark kept. Zero before any mark.
    pub(super) fn lag(&mut self, now: Instant, replayed: i64) -> Duration {
        let reached = self.marks.iter().rposition(|(_, p)| *p <= replayed);
        match reached {
            Some(i) => {
                self.marks.drain(..i);
                now.saturating_duration_since(self.marks[0].0)
            }
            None => self
                .marks
                .front()
                .map_or(Duration::ZERO, |(at, _)| now.saturating_duration_since(*at)),
        }
    }
}

/// How often the watcher looks, for a maximum lag of `max`: four times
/// within it, between 100 ms and a second.
pub(super) fn tick(max: Duration) -> Duration {
    (max / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// How many marks cover twice `max` at one per `tick(max)`, so that a
/// standby further behind than `max` is still seen to be.
pub(super) fn keep(max: Duration) -> usize {
    let ticks = (2 * max).as_millis() / tick(max).as_millis().max(1);
    usize::try_from(ticks)
        .unwrap_or(usize::MAX)
        .saturating_add(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_standby_that_replayed_the_newest_mark_is_behind_by_its_age() {
        let t0 = Instant::now();
        let mut marks = Marks::default();
        marks.push(t0, 100, 10);
        marks.push(t0 + secs(1), 200, 10);
        assert_eq!(marks.lag(t0 + secs(1), 200), Duration::ZERO);
        assert_eq!(marks.lag(t0 + secs(3), 250), secs(2));
    }

    #[test]
    fn an_idle_primary_leaves_a_caught_up_standby_without_lag() {
        let t0 = Instant::now();
        let mut marks = Marks::default();
        for s in 0..5 {
            marks.push(t0 + secs(s), 100, 10);
        }
        assert_eq!(marks.lag(t0 + secs(4), 100), Duration::ZERO);
    }

    #[test]
    fn a_standby_that_stopped_replaying_falls_behind_from_the_last_mark_it_reached() {
        let t0 = Instant::now();
        let mut marks = Marks::default();
        marks.push(t0, 100, 10);
        assert_eq!(marks.lag(t0, 100), Duration::ZERO);
        for s in 1..6 {
            marks.push(t0 + secs(s), 100 + s as i64, 10);
            assert_eq!(marks.lag(t0 + secs(s), 100), secs(s));
        }
        // Replay goes on: the lag comes back down to the mark reached.
        assert_eq!(marks.lag(t0 + secs(5), 104), secs(1));
        assert_eq!(marks.lag(t0 + secs(5), 105), Duration::ZERO);
    }

    #[test]
    fn beyond_the_marks_kept_the_lag_is_at_least_the_oldest_one_s_age() {
        let t0 = Instant::now();
        let mut marks = Marks::default();
        for s in 0..10 {
            marks.push(t0 + secs(s), 200 + s as i64, 4);
        }
        assert_eq!(marks.lag(t0 + secs(9), 100), secs(3));
        assert_eq!(Marks::default().lag(t0, 0), Duration::ZERO);
    }

    #[test]
    fn the_marks_cover_twice_the_maximum_lag() {
        for ms in [100, 1_000, 10_000, 60_000] {
            let max = Duration::from_millis(ms);
            let t = tick(max);
            assert!(t >= Duration::from_millis(100) && t <= secs(1), "{t:?}");
            assert!(t * (keep(max) as u32 - 1) >= 2 * max, "{ms}");
        }
    }
}
