//! What ended, and when: the overview's records per minute and latency, the
//! organizations' last 24 hours. Minutes that are settled (see
//! `objectsync_store::ended`) are read once and kept here; each view reads
//! fresh only the processes that ended since, so its cost follows the
//! last minute or two of throughput, not the last hour's or day's.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, DurationRound, Utc};
use objectsync_model::OrgId;
use objectsync_store::ended::{self, Ended, Latencies};
use objectsync_store::{GenericClient, StoreResult};
use tokio::sync::Mutex;

/// How far back minutes are kept: the organizations page's day, and the
/// minute it started in.
fn kept() -> Duration {
    Duration::hours(24) + Duration::minutes(1)
}

/// One organization's processes that ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrgEnded {
    pub(crate) processes: i64,
    pub(crate) failed: i64,
    pub(crate) records: i64,
}

/// One minute's ended processes.
#[derive(Debug, Default, Clone)]
struct Minute {
    orgs: HashMap<OrgId, OrgEnded>,
    latencies: Latencies,
}

impl Minute {
    fn add(&mut self, e: &Ended) {
        let o = self.orgs.entry(e.org).or_default();
        o.processes += e.processes;
        o.records += e.records;
        if e.failed {
            o.failed += e.processes;
        }
        self.latencies.add(e);
    }
}

/// What ended since a minute: per minute, per organization, and the
/// latencies of the completed processes.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// Records per minute, minutes without any left out.
    pub(crate) per_minute: BTreeMap<DateTime<Utc>, i64>,
    pub(crate) orgs: HashMap<OrgId, OrgEnded>,
    pub(crate) latencies: Latencies,
}

impl Summary {
    fn add_minute(&mut self, at: DateTime<Utc>, m: &Minute) {
        let records = self.per_minute.entry(at).or_default();
        for (org, o) in &m.orgs {
            *records += o.records;
            let sum = self.orgs.entry(*org).or_default();
            sum.processes += o.processes;
            sum.failed += o.failed;
            sum.records += o.records;
        }
        self.latencies.merge(&m.latencies);
    }
}

/// Settled minutes `[from, to)`, read once.
#[derive(Default)]
struct Settled {
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    minutes: BTreeMap<DateTime<Utc>, Minute>,
}

impl Settled {
    fn fold(&mut self, rows: &[Ended]) {
        for e in rows {
            self.minutes.entry(e.minute).or_default().add(e);
        }
    }
}

/// The start of the current minute (this process's clock).
pub(crate) fn this_minute() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(Duration::minutes(1)).unwrap_or(now)
}

/// The settled minutes of one ingest process, shared by its requests.
#[derive(Default)]
pub(crate) struct EndedCache(Mutex<Settled>);

impl EndedCache {
    /// What ended from minute `from` on, read through `c`, which may be a
    /// standby's; which minutes are settled only `primary` can say (a
    /// standby sees none of the primary's running transactions), and a
    /// minute is kept only once `c` has replayed the primary's WAL past it.
    pub(crate) async fn since(
        &self,
        primary: &impl GenericClient,
        c: &impl GenericClient,
        from: DateTime<Utc>,
    ) -> StoreResult<Summary> {
        let mut settled = ended::settled_before(primary).await?;
        let position = ended::wal_position(primary).await?;
        if !ended::replayed(c, &position).await? {
            // The standby lags: settle nothing more this time.
            settled = DateTime::<Utc>::MIN_UTC;
        }
        let mut summary = Summary::default();
        let fresh_from = {
            let mut s = self.0.lock().await;
            let (mut lo, mut hi) = s.range.unwrap_or((from, from));
            if from < lo {
                let rows = ended::between(c, from, Some(lo)).await?;
                s.fold(&rows);
                lo = from;
            }
            if settled > hi {
                let rows = ended::between(c, hi, Some(settled)).await?;
                s.fold(&rows);
                hi = settled;
            }
            // Forget what is older than anyone asks for.
            let oldest = hi - kept();
            if lo < oldest {
                s.minutes = s.minutes.split_off(&oldest);
                lo = oldest;
            }
            s.range = Some((lo, hi));
            for (at, m) in s.minutes.range(from..hi) {
                summary.add_minute(*at, m);
            }
            hi.max(from)
        };
        let mut fresh = Settled::default();
        fresh.fold(&ended::between(c, fresh_from, None).await?);
        for (at, m) in &fresh.minutes {
            summary.add_minute(*at, m);
        }
        Ok(summary)
    }
}
