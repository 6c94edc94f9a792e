//! When each API key was last used (`api_keys.last_used_at`), so that an
//! operator rotating a key sees whether the old one still authenticates
//! anything before revoking it. Recorded off the request's path: a task
//! writes it, at most once a minute per key from each ingest process (the
//! statement itself skips a row written less than a minute ago, by any
//! replica), so requests neither wait for it nor add a write each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use objectsync_store::{StoreError, organizations};

/// How often a key's use is written at most.
const INTERVAL: Duration = Duration::from_secs(60);

/// Keys remembered before those not written for a minute are forgotten.
const REMEMBERED: usize = 10_000;

/// The keys this process wrote a use of, and when.
#[derive(Debug, Default)]
pub(crate) struct KeyUse {
    written: Mutex<HashMap<Vec<u8>, Instant>>,
}

impl KeyUse {
    /// Whether the use of `key_hash` at `now` is to be written (and, if
    /// so, it is taken as written).
    fn due(&self, key_hash: &[u8], now: Instant) -> bool {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        match written.get_mut(key_hash) {
            Some(at) if now.duration_since(*at) < INTERVAL => false,
            Some(at) => {
                *at = now;
                true
            }
            // Only a key not remembered yet grows the map, so only then is
            // it pruned: a request with a known key never walks it.
            None => {
                if written.len() >= REMEMBERED {
                    written.retain(|_, at| now.duration_since(*at) < INTERVAL);
                }
                written.insert(key_hash.to_vec(), now);
                true
            }
        }
    }

    /// Takes back that `key_hash` was written: its write failed, and the
    /// next request with it tries again.
    fn forget(&self, key_hash: &[u8]) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.remove(key_hash);
    }

    /// Records that `key_hash` authenticated a request, in the background.
    pub(crate) fn record(self: &Arc<Self>, pool: &Pool, key_hash: &[u8]) {
        if !self.due(key_hash, Instant::now()) {
            return;
        }
        let (uses, pool, key_hash) = (self.clone(), pool.clone(), key_hash.to_vec());
        tokio::spawn(async move {
            let written = async {
                let client = pool.get().await?;
                organizations::mark_used(&client, &key_hash).await
            };
            if let Err(e) = written.await as Result<(), StoreError> {
                uses.forget(&key_hash);
                tracing::debug!(error = %e, "an API key's use was not recorded; the next request tries again");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_s_use_is_written_once_a_minute_at_most() {
        let uses = KeyUse::default();
        let t0 = Instant::now();
        assert!(uses.due(b"a", t0));
        assert!(!uses.due(b"a", t0 + Duration::from_secs(59)));
        assert!(uses.due(b"b", t0 + Duration::from_secs(1)));
        assert!(uses.due(b"a", t0 + INTERVAL));
        assert!(!uses.due(b"a", t0 + INTERVAL + Duration::from_secs(1)));
    }

    #[test]
    fn a_write_that_failed_is_tried_again_by_the_next_request() {
        let uses = KeyUse::default();
        let t0 = Instant::now();
        assert!(uses.due(b"a", t0));
        uses.forget(b"a");
        assert!(uses.due(b"a", t0 + Duration::from_secs(1)));
    }

    #[test]
    fn keys_not_written_for_a_minute_are_forgotten_past_the_bound() {
        let uses = KeyUse::default();
        let t0 = Instant::now();
        for i in 0..REMEMBERED as u32 {
            assert!(uses.due(&i.to_be_bytes(), t0));
        }
        assert!(uses.due(b"late", t0 + INTERVAL));
        let written = uses.written.lock().unwrap();
        assert_eq!(written.len(), 1, "only the late key is remembered");
    }
}
