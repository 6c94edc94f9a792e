//! Processes that ended, summed per minute: what the console's overview and
//! organizations pages show (records applied per minute, `202` → `completed`
//! percentiles, activity of the last 24 hours).
//!
//! Summing the processes that ended in the last hour on every view reads as
//! many rows as ended in that hour — a million at this machine's small-batch
//! rate, half a second of work every few seconds for every open overview.
//! A minute is summed once it is *settled* ([`settled_before`]): no running
//! transaction can still stamp a process as ended in it. Callers keep settled
//! minutes and read fresh only what ended after the settled ones.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, Utc};
use objectsync_model::OrgId;

use crate::{GenericClient, StoreResult};

/// Latencies of completed processes are counted in buckets whose bounds grow
/// by 10 %: bucket 0 holds latencies up to 1 ms, bucket `b` those in
/// (1 ms · 1.1^(b−1), 1 ms · 1.1^b]. A percentile read from them is within
/// 5 % of the exact one. Bucket 200 (53 hours) takes everything longer.
const BUCKET_BASE_SECS: f64 = 0.001;
const BUCKET_GROWTH: f64 = 1.1;
const LAST_BUCKET: i32 = 200;

/// Processes of one organization that ended in one minute with one outcome
/// (and, when completed, one latency bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub minute: DateTime<Utc>,
    pub org: OrgId,
    pub failed: bool,
    /// The latency bucket of completed processes; `None` for failed ones.
    pub bucket: Option<i32>,
    pub processes: i64,
    pub records: i64,
}

/// The start of the earliest minute in which a process may still be marked
/// as ended: the minute of [`oldest_writer_start`], a second earlier. A
/// process is stamped `completed_at` by an update that reads the clock in
/// a subquery after giving its transaction an id (`pg_current_xact_id()`,
/// which on Citus is the coordinator's, where this reads); so a stamp not
/// yet committed belongs to a transaction that has an id, and is no
/// earlier than that transaction's start, and any stamp still to come is
/// later than now. The second covers the moment between a commit and its
/// stamp becoming visible (on Citus, a worker's commit of a transaction
/// that wrote to several nodes follows the coordinator's).
pub async fn settled_before(c: &impl GenericClient) -> StoreResult<DateTime<Utc>> {
    let bound = oldest_writer_start(c).await? - chrono::Duration::seconds(1);
    Ok(bound
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap_or(bound))
}

/// Where the primary's WAL ends now (its insert position, `pg_lsn` as
/// text). Read after [`settled_before`], it is past the commit of every
/// transaction that could stamp a process before that bound, so a standby
/// that has replayed up to it holds all of them (see [`replayed`]).
pub async fn wal_position(c: &impl GenericClient) -> StoreResult<String> {
    let row = crate::query_one(c, "select pg_current_wal_insert_lsn()::text", &[]).await?;
    Ok(row.get(0))
}

/// Whether the server `c` is on holds the primary's WAL up to `position`
/// (see [`wal_position`]): a standby that has replayed that far, or the
/// primary itself.
pub async fn replayed(c: &impl GenericClient, position: &str) -> StoreResult<bool> {
    let row = crate::query_one(
        c,
        "select not pg_is_in_recovery()
                or coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
        &[&position],
    )
    .await?;
    Ok(row.get(0))
}

/// When the oldest transaction that has written (has an id) and is still
/// running in this database began, or now if there is none. Readers (a BI
/// tool's long query, an idle `begin`) and autovacuum do not count. Only
/// sessions whose `backend_xid` this role may read count; the services all
/// connect as one role.
pub async fn oldest_writer_start(c: &impl GenericClient) -> StoreResult<DateTime<Utc>> {
    let row = crate::query_one(
        c,
        "select least(min(xact_start), now())
           from pg_stat_activity
          where datname = current_database()
            and backend_type = 'client backend'
            and backend_xid is not null",
        &[],
    )
    .await?;
    Ok(row.get(0))
}

/// Processes that ended at `from` or later, and before `to` when given,
/// from the index of end times.
pub async fn between(
    c: &impl GenericClient,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
) -> StoreResult<Vec<Ended>> {
    let rows = crate::query(
        c,
        "select date_trunc('minute', completed_at), org_id, status = 'failed',
                case when status = 'completed' then
                     least($3::int4, greatest(0, ceil(
                         ln(greatest(extract(epoch from completed_at - created_at)::float8,
                                     $4::float8) / $4::float8) / ln($5::float8))::int4))
                end,
                count(*), coalesce(sum(records_processed), 0)::int8
           from processes
          where completed_at >= $1 and completed_at < coalesce($2::timestamptz, 'infinity')
          group by 1, 2, 3, 4",
        &[&from, &to, &LAST_BUCKET, &BUCKET_BASE_SECS, &BUCKET_GROWTH],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Ended {
            minute: r.get(0),
            org: r.get(1),
            failed: r.get(2),
            bucket: r.get(3),
            processes: r.get(4),
            records: r.get(5),
        })
        .collect())
}

/// Completed processes counted by latency bucket.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Latencies(BTreeMap<i32, i64>);

impl Latencies {
    pub fn add(&mut self, e: &Ended) {
        if let Some(b) = e.bucket {
            *self.0.entry(b).or_default() += e.processes;
        }
    }

    /// Adds what `other` counted.
    pub fn merge(&mut self, other: &Latencies) {
        for (b, k) in &other.0 {
            *self.0.entry(*b).or_default() += k;
        }
    }

    /// Completed processes counted.
    pub fn count(&self) -> i64 {
        self.0.values().sum()
    }

    /// The `q`-quantile (nearest rank), in seconds, as the middle of its
    /// bucket (within 5 %); `None` when nothing was counted.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as i64).clamp(1, n);
        let mut seen = 0;
        let bucket = self.0.iter().find_map(|(b, k)| {
            seen += k;
            (seen >= rank).then_some(*b)
        })?;
        Some(middle(bucket))
    }
}

/// A bucket's latency: its geometric middle (1 ms for bucket 0).
fn middle(bucket: i32) -> f64 {
    if bucket <= 0 {
        BUCKET_BASE_SECS
    } else {
        BUCKET_BASE_SECS * BUCKET_GROWTH.powf(f64::from(bucket) - 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(bucket: i32, processes: i64) -> Ended {
        Ended {
            minute: DateTime::<Utc>::UNIX_EPOCH,
            org: OrgId(1),
            failed: false,
            bucket: Some(bucket),
            processes,
            records: 0,
        }
    }

    #[test]
    fn quantiles_come_from_the_bucket_holding_their_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile(0.5), None);
        l.add(&ended(10, 98));
        l.add(&ended(40, 1));
        l.add(&ended(70, 1));
        assert_eq!(l.count(), 100);
        assert_eq!(l.quantile(0.5), Some(middle(10)));
        assert_eq!(l.quantile(0.98), Some(middle(10)));
        assert_eq!(l.quantile(0.99), Some(middle(40)));
        assert_eq!(l.quantile(1.0), Some(middle(70)));
    }

    #[test]
    fn failed_processes_have_no_latency() {
        let mut l = Latencies::default();
        l.add(&Ended {
            failed: true,
            bucket: None,
            ..ended(0, 5)
        });
        assert_eq!(l.count(), 0);
    }

    #[test]
    fn a_bucket_middle_is_within_five_percent_of_its_bounds() {
        for b in 1..=LAST_BUCKET {
            let low = BUCKET_BASE_SECS * BUCKET_GROWTH.powi(b - 1);
            let high = BUCKET_BASE_SECS * BUCKET_GROWTH.powi(b);
            let m = middle(b);
            assert!(m > low && m < high);
            assert!((m - low) / low < 0.05 && (high - m) / high < 0.05, "{b}");
        }
    }
}
