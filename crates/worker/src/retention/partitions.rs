//! The partitions of `processes` (see `objectsync_store::partitions`): made
//! ahead of the ids being drawn, dropped once every process of theirs ended
//! before the retention time.
//!
//! A partition is sized to hold `retention.partition_secs` of acceptances
//! at the rate batches come now (and never fewer than
//! `retention.partition_min_processes` ids), so the tables hold about
//! retention ÷ partition span partitions whatever the traffic; and the
//! sweeper keeps one and a half such sizes of ids ahead (a day and a half
//! of batches at the rate of now, by default), so a burst between two
//! sweeps never finds an id without a partition.
//!
//! A partition is expired when every id of it has been drawn, none of its
//! processes is open, and the last one ended before the retention time: an
//! open process, however old, keeps its whole partition. It is then
//! removed (`super::expiry`), unless a `pg_dump` is reading the database:
//! a table dropped under a starting dump fails it, so the drop waits for a
//! sweep with no dump running.
//!
//! The partitions ahead are made by migration V43's function, which runs
//! with its owner's rights (V47): the app role may call it.

use std::time::Instant;

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use objectsync_infra::settings::RetentionSettings;
use objectsync_store::partitions::{self, Partition};

use super::expiry::{Detach, expire, finish_interrupted};
use crate::error::WorkerError;

/// The next id and when it was read, kept from one sweep to the next: the
/// rate of the last minute, which sees a burst the partitions' average
/// would smooth away.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    next: i64,
    at: Instant,
}

/// A partition whose first process is younger than this is too young to
/// tell the rate by; the one before it tells it.
const MIN_SAMPLE_SECS: f64 = 600.0;

/// One sweep of the partitions; `citus`: the database is a Citus
/// coordinator.
pub(crate) async fn sweep(
    client: &mut Client,
    s: &RetentionSettings,
    citus: bool,
    last: &mut Option<Sample>,
) -> Result<(), WorkerError> {
    let now: DateTime<Utc> = client.query_one("select now()", &[]).await?.get(0);
    let cutoff = now - chrono::Duration::seconds(s.processes_secs.min(i64::MAX as u64) as i64);
    let how = Detach::of(client, citus).await?;
    let dumping = partitions::dump_running(&*client).await?;
    if dumping {
        tracing::info!("a pg_dump is reading the database: no partition is dropped until it ends");
    } else {
        finish_interrupted(client, how, s, cutoff).await?;
    }
    let (attached, _) = partitions::list(&*client).await?;
    let next = partitions::next_id(&*client).await?;
    let short = last.map(|l| rate(l.next, next, l.at.elapsed().as_secs_f64()));
    *last = Some(Sample {
        next,
        at: Instant::now(),
    });
    let long = long_rate(client, &attached, next, now).await?;
    let width = width(short.into_iter().chain(long).reduce(f64::max), s);
    let made = ahead(next, attached.last().map_or(next, |p| p.hi), width);
    for &(lo, hi) in &made {
        partitions::add(&*client, lo, hi).await?;
        tracing::info!(lo, hi, "partitions of processes added");
    }
    if !made.is_empty() {
        metrics::counter!("objectsync_retention_partitions_added_total")
            .increment(made.len() as u64);
    }
    let mut kept = attached.len() + made.len();
    if s.processes_secs > 0 && !dumping {
        for p in attached.iter().filter(|p| p.hi <= next) {
            if expire(client, how, p, cutoff).await? {
                kept -= 1;
            }
        }
    }
    metrics::gauge!("objectsync_processes_partitions").set(kept as f64);
    Ok(())
}

/// Ids per second between two readings of the next id.
fn rate(before: i64, after: i64, secs: f64) -> f64 {
    (after - before).max(0) as f64 / secs.max(1.0)
}

/// The rate since the first process of the partition the newest id is in,
/// or of the one before when that one began less than
/// [`MIN_SAMPLE_SECS`] ago; `None` on a database too young to tell.
async fn long_rate(
    client: &Client,
    attached: &[Partition],
    next: i64,
    now: DateTime<Utc>,
) -> Result<Option<f64>, WorkerError> {
    let current = attached
        .iter()
        .rposition(|p| p.lo.is_none_or(|lo| lo < next));
    let Some(current) = current else {
        return Ok(None);
    };
    for p in attached[..=current].iter().rev().take(2) {
        if let Some((id, at)) = partitions::first(client, p).await? {
            let secs = (now - at).num_milliseconds() as f64 / 1000.0;
            if secs >= MIN_SAMPLE_SECS {
                return Ok(Some(rate(id, next, secs)));
            }
        }
    }
    Ok(None)
}

/// The ids a new partition holds at `rate` ids a second.
fn width(rate: Option<f64>, s: &RetentionSettings) -> i64 {
    let max = RetentionSettings::MAX_PARTITION_PROCESSES;
    let by_rate = rate.unwrap_or(0.0) * s.partition_secs as f64;
    (by_rate.min(max as f64) as i64).clamp(s.partition_min_processes, max)
}

/// The ranges to add after `hi` (the end of the last partition) so that at
/// least one and a half partitions' worth of ids lie ahead of `next`.
fn ahead(next: i64, mut hi: i64, width: i64) -> Vec<(i64, i64)> {
    let mut made = Vec::new();
    // Ids drawn past every partition (their batches were refused) leave a
    // gap no partition needs to cover.
    hi = hi.max(next);
    while 2 * (hi - next) < 3 * width {
        made.push((hi, hi + width));
        hi += width;
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_holds_the_span_at_the_rate_of_now_or_the_minimum() {
        let s = RetentionSettings::default();
        assert_eq!(width(None, &s), 1_000_000, "no rate yet: the minimum");
        assert_eq!(width(Some(1.0), &s), 1_000_000, "a day at 1/s is less");
        assert_eq!(width(Some(280.0), &s), 24_192_000, "a day at 280/s");
        assert_eq!(
            width(Some(f64::MAX), &s),
            RetentionSettings::MAX_PARTITION_PROCESSES
        );
    }

    #[test]
    fn a_partition_and_a_half_of_ids_stay_ahead_of_the_next_one() {
        // A fresh database: two partitions of the minimum size.
        assert_eq!(ahead(1, 2_000_001, 1_000_000), vec![]);
        assert_eq!(ahead(500_001, 2_000_001, 1_000_000), vec![]);
        assert_eq!(
            ahead(500_002, 2_000_001, 1_000_000),
            vec![(2_000_001, 3_000_001)]
        );
        // Ids drawn past the partitions: the new ones start at the next.
        assert_eq!(ahead(50, 40, 20), vec![(50, 70), (70, 90)]);
        assert_eq!(ahead(0, 0, 1), vec![(0, 1), (1, 2)]);
    }

    #[test]
    fn a_rate_never_divides_by_less_than_a_second() {
        assert_eq!(rate(100, 400, 0.0), 300.0);
        assert_eq!(rate(100, 400, 3.0), 100.0);
        assert_eq!(rate(400, 100, 3.0), 0.0);
    }
}
