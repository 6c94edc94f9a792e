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

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool, PoolError, TimeoutType};

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
}

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

    /// Reads on `standby`, or on `primary` while the standby fails.
    pub fn with_standby(primary: Pool, standby: Pool) -> Self {
        Self {
            primary,
            standby: Some(Arc::new(Standby {
                pool: standby,
                epoch: Instant::now(),
                skip_until: AtomicU64::new(0),
                down: AtomicBool::new(false),
            })),
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
        if let Some(standby) = self.standby.as_ref().filter(|s| !s.skipped()) {
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

    /// Whether the standby answers a trivial query (`None`: no standby).
    pub async fn standby_answers(&self) -> Option<bool> {
        let standby = self.standby.as_ref()?;
        let up = super::ping(&standby.pool).await;
        if !up {
            standby.mark_down(&"it did not answer /readyz's query");
        }
        Some(up)
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
