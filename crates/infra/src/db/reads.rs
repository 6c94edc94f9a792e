//! Reads that tolerate a little lag, on a hot standby when
//! `database.read_url` names one: the record lists and the console's
//! overview, which are most of what a busy install reads, leave the
//! primary to the writes and the reads that must see them.
//!
//! A standby that cannot be reached is no outage: those reads go to the
//! primary instead, and the standby is tried again [`STANDBY_RETRY`] later,
//! so that a stopped standby costs one failed connection attempt per period
//! rather than one per request. A statement the standby fails while running
//! (it stopped under the request, or a recovery conflict cancelled it) is a
//! transient error, a 503 like any other, never a 500; the standby is then
//! skipped too, so the client's retry lands on the primary.
//!
//! A standby that answers but has fallen further behind than
//! `database.read_max_lag_ms` is skipped the same way until it catches up
//! (see [`super::lag`], and [`ReadPool::watch_lag`], which measures it).

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool, PoolError, TimeoutType};
use tokio_util::sync::CancellationToken;

use super::lag::{self, Marks};

/// How long reads skip a standby that failed before trying it again.
pub const STANDBY_RETRY: Duration = Duration::from_secs(5);

/// Where the lag-tolerant reads of a process go: the standby when there is
/// one and it answers, the primary otherwise. Cheap to clone.
#[derive(Clone)]
pub struct ReadPool {
    primary: Pool,
    standby: Option<Arc<Standby>>,
}

/// A standby's pool and whether it is being skipped.
struct Standby {
    pool: Pool,
    /// When this process started counting, for `skip_until`.
    epoch: Instant,
    /// Milliseconds after `epoch` until which reads skip the standby.
    skip_until: AtomicU64,
    /// Whether the last attempt failed, so that the change is logged once
    /// each way rather than on every request.
    down: AtomicBool,
    /// The most its replay may lag behind the primary while it serves
    /// reads (`None`: no bound).
    max_lag: Option<Duration>,
    /// Whether it lags further behind than that, as last measured.
    behind: AtomicBool,
    /// Milliseconds after `epoch` of the last measurement of its lag
    /// (`NOT_WATCHED` until [`ReadPool::watch_lag`] starts).
    measured_ms: AtomicU64,
    /// Whether reads left it because its lag went unmeasured, so that the
    /// change is logged once each way.
    unmeasured: AtomicBool,
}

/// `Standby::measured_ms` while nothing measures the lag.
const NOT_WATCHED: u64 = u64::MAX;

impl Standby {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn skipped(&self) -> bool {
        self.now_ms() < self.skip_until.load(Ordering::Relaxed)
    }

    /// Reads go to the primary for [`STANDBY_RETRY`].
    fn mark_down(&self, why: &dyn std::fmt::Display) {
        let until = self.now_ms() + STANDBY_RETRY.as_millis() as u64;
        self.skip_until.store(until, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %why, retry_in = ?STANDBY_RETRY,
                "read standby unavailable; its reads go to the primary");
        }
    }

    fn mark_up(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("read standby answers again; lag-tolerant reads go to it");
        }
    }

    /// Records a measured lag: past `max`, reads go to the primary until a
    /// measurement says it is back within it.
    fn set_lag(&self, lag: Duration, max: Duration) {
        self.measured_ms.store(self.now_ms(), Ordering::Relaxed);
        metrics::gauge!("objectsync_read_standby_lag_seconds").set(lag.as_secs_f64());
        let behind = lag > max;
        if self.behind.swap(behind, Ordering::Relaxed) != behind {
            if behind {
                tracing::warn!(
                    ?lag,
                    ?max,
                    "read standby lags too far behind; its reads go to the primary"
                );
            } else {
                tracing::info!(?lag, "read standby caught up; lag-tolerant reads go to it");
            }
        }
    }

    /// Whether the lag is measured but went unmeasured for longer than its
    /// bound (the watcher waited that long for a connection, under a flood,
    /// or for the primary): the standby may be that far behind unseen, so
    /// reads leave it until a measurement comes.
    fn unmeasured(&self) -> bool {
        let Some(max) = self.max_lag else {
            return false;
        };
        let measured = self.measured_ms.load(Ordering::Relaxed);
        let stale = measured != NOT_WATCHED
            && self.now_ms().saturating_sub(measured) > max.as_millis() as u64;
        if self.unmeasured.swap(stale, Ordering::Relaxed) != stale {
            match stale {
                true => tracing::warn!(
                    ?max,
                    "read standby's lag went unmeasured for longer than its bound; its reads go to the primary"
                ),
                false => tracing::info!("read standby's lag is measured again"),
            }
        }
        stale
    }

    fn behind(&self) -> bool {
        self.behind.load(Ordering::Relaxed) || self.unmeasured()
    }

    fn usable(&self) -> bool {
        !self.skipped() && !self.behind()
    }
}

/// What `/readyz` says of the read standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandbyState {
    /// It answers and is within the maximum lag: it serves the reads.
    Up,
    /// It does not answer: its reads go to the primary.
    Down,
    /// It answers but lags too far behind: its reads go to the primary.
    Behind,
}

impl StandbyState {
    /// The word `/readyz` uses.
    pub fn word(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Behind => "behind",
        }
    }
}

/// A lag-tolerant read that went to the primary although a standby is
/// configured.
fn count_fallback() {
    metrics::counter!("objectsync_read_fallbacks_total").increment(1);
}

/// Which server a [`ReadClient`] is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Primary,
    Standby,
}

/// A pooled connection for lag-tolerant reads (deref to use it as any
/// other). One to a standby that is closed by the time it is dropped (the
/// standby went away under it) makes the next reads skip the standby.
pub struct ReadClient {
    client: Object,
    standby: Option<Arc<Standby>>,
}

impl ReadClient {
    /// Where this connection goes.
    pub fn server(&self) -> Server {
        match self.standby {
            Some(_) => Server::Standby,
            None => Server::Primary,
        }
    }
}

impl Deref for ReadClient {
    type Target = Object;

    fn deref(&self) -> &Object {
        &self.client
    }
}

impl Drop for ReadClient {
    fn drop(&mut self) {
        if let Some(standby) = &self.standby
            && self.client.is_closed()
        {
            standby.mark_down(&"its connection closed during a request");
        }
    }
}

impl ReadPool {
    /// Reads on `primary` alone (no standby configured).
    pub fn primary_only(primary: Pool) -> Self {
        Self {
            primary,
            standby: None,
        }
    }

    /// Reads on `standby`, or on `primary` while the standby fails or
    /// (once [`Self::watch_lag`] runs) lags more than `max_lag` behind.
    pub fn with_standby(primary: Pool, standby: Pool, max_lag: Option<Duration>) -> Self {
        Self {
            primary,
            standby: Some(Arc::new(Standby {
                pool: standby,
                epoch: Instant::now(),
                skip_until: AtomicU64::new(0),
                down: AtomicBool::new(false),
                max_lag,
                behind: AtomicBool::new(false),
                measured_ms: AtomicU64::new(NOT_WATCHED),
                unmeasured: AtomicBool::new(false),
            })),
        }
    }

    /// Measures the standby's lag behind the primary until `cancel` fires
    /// (see [`super::lag`]), sending the reads to the primary while it is
    /// past the maximum. Returns at once without a standby or a maximum.
    pub async fn watch_lag(self, cancel: CancellationToken) {
        let Some(standby) = self.standby.clone() else {
            return;
        };
        let Some(max) = standby.max_lag else { return };
        let (tick, keep) = (lag::tick(max), lag::keep(max));
        // From now on, a lag left unmeasured for longer than `max` counts
        // as too far behind.
        standby
            .measured_ms
            .store(standby.now_ms(), Ordering::Relaxed);
        let mut marks = Marks::default();
        let mut not_a_standby_said = false;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(tick) => {}
            }
            let at = Instant::now();
            let Ok(primary) = self.primary.get().await else {
                continue;
            };
            let Ok(row) = primary
                .query_one(
                    "select (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::int8",
                    &[],
                )
                .await
            else {
                continue;
            };
            drop(primary);
            marks.push(at, row.get(0), keep);
            if standby.skipped() {
                continue;
            }
            let replayed = match standby.pool.get().await {
                Ok(c) => c
                    .query_one(
                        "select (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8",
                        &[],
                    )
                    .await
                    .map(|r| r.get::<_, Option<i64>>(0))
                    .map_err(|e| e.to_string()),
                Err(PoolError::Timeout(TimeoutType::Wait)) => continue,
                Err(e) => Err(e.to_string()),
            };
            match replayed {
                Ok(Some(replayed)) => standby.set_lag(marks.lag(Instant::now(), replayed), max),
                // Not in recovery: no replay to lag behind.
                Ok(None) => {
                    if !std::mem::replace(&mut not_a_standby_said, true) {
                        tracing::warn!(
                            "the read URL names a server that is not a standby; its lag is not measured"
                        );
                    }
                    standby.set_lag(Duration::ZERO, max);
                }
                Err(e) => standby.mark_down(&e),
            }
        }
    }

    /// The primary's pool, for what must see the latest writes.
    pub fn primary(&self) -> &Pool {
        &self.primary
    }

    /// Whether a standby is configured.
    pub fn has_standby(&self) -> bool {
        self.standby.is_some()
    }

    /// A connection to the standby, or to the primary when there is no
    /// standby or it cannot give one now. Errors are the primary's.
    pub async fn get(&self) -> Result<ReadClient, PoolError> {
        if let Some(standby) = self.standby.as_ref().filter(|s| s.usable()) {
            match standby.pool.get().await {
                Ok(client) => {
                    standby.mark_up();
                    return Ok(ReadClient {
                        client,
                        standby: Some(standby.clone()),
                    });
                }
                // Every connection busy: the standby is up, only loaded.
                Err(PoolError::Timeout(TimeoutType::Wait)) => {}
                Err(e) => standby.mark_down(&e),
            }
            count_fallback();
        } else if self.standby.is_some() {
            count_fallback();
        }
        Ok(ReadClient {
            client: self.primary.get().await?,
            standby: None,
        })
    }

    /// Whether the standby answers a trivial query and is within its
    /// maximum lag (`None`: no standby).
    pub async fn standby_state(&self) -> Option<StandbyState> {
        let standby = self.standby.as_ref()?;
        let up = super::ping(&standby.pool).await;
        if !up {
            standby.mark_down(&"it did not answer /readyz's query");
            return Some(StandbyState::Down);
        }
        Some(match standby.behind() {
            true => StandbyState::Behind,
            false => StandbyState::Up,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::db::{DbError, Sessions, pool, read_pool};
    use crate::settings::{Role, Settings};

    fn settings(read_url: &str) -> Settings {
        Settings::load_from(
            Role::Ingest,
            None,
            [("DATABASE_READ_URL".to_owned(), read_url.to_owned())].into(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn the_read_url_gets_the_same_tls_handling_as_the_primary_s() {
        let s = settings("postgres://app@standby/x?sslmode=verify-full");
        let primary = pool(&s.database).unwrap();
        let Err(e) = read_pool(&s.database, primary, Sessions::Requests, None) else {
            panic!("verify-full without sslrootcert was taken");
        };
        assert!(matches!(e, DbError::Tls(_)), "{e}");
        assert!(e.to_string().contains("sslrootcert"), "{e}");
    }

    #[tokio::test]
    async fn a_lag_left_unmeasured_longer_than_its_bound_counts_as_too_far_behind() {
        use std::sync::atomic::Ordering;
        use std::time::Duration;
        let s = settings("postgres://app@standby/x");
        let max = Duration::from_millis(200);
        let primary = pool(&s.database).unwrap();
        let standby = pool(&s.database).unwrap();
        let reads = super::ReadPool::with_standby(primary, standby, Some(max));
        let standby = reads.standby.as_ref().unwrap();
        // Nothing measures: nothing to go stale.
        std::thread::sleep(2 * max);
        assert!(standby.usable());
        // The watcher starts (as `watch_lag` does), then cannot measure.
        let started = standby.now_ms();
        standby.measured_ms.store(started, Ordering::Relaxed);
        assert!(standby.usable());
        std::thread::sleep(max + Duration::from_millis(50));
        assert!(!standby.usable());
        // A measurement within the bound brings the reads back.
        standby.set_lag(Duration::from_millis(10), max);
        assert!(standby.usable());
        // One past it keeps them on the primary, measured or not.
        standby.set_lag(2 * max, max);
        assert!(!standby.usable());
    }

    #[tokio::test]
    async fn no_read_url_or_an_empty_one_reads_the_primary() {
        for s in [
            Settings::load_from(Role::Ingest, None, Default::default()).unwrap(),
            settings(""),
        ] {
            let primary = pool(&s.database).unwrap();
            let reads = read_pool(&s.database, primary, Sessions::Requests, None).unwrap();
            assert!(!reads.has_standby());
        }
        let s = settings("postgres://app@standby/x");
        let primary = pool(&s.database).unwrap();
        let reads = read_pool(&s.database, primary, Sessions::Requests, None).unwrap();
        assert!(reads.has_standby());
    }
}
