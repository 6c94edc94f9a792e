//! Wrong admin tokens, throttled per client address.
//!
//! The admin token opens the admin API (header `admin-token`) and the
//! console's login form. Each client address may send 10 wrong tokens a
//! minute (a bucket of 10 that refills one every 6 s); past that, every
//! attempt from it is answered `429` with `Retry-After` and its token is not
//! even compared — otherwise a guess that happens to be right would still
//! tell itself apart. Other addresses are not affected, so an operator
//! elsewhere keeps working while a client guesses.
//!
//! The buckets live in this process's memory, not in PostgreSQL: a flood of
//! guesses costs no database connection (the pool stays for the API), and
//! with n ingest replicas an address gets at most n × 10 guesses a minute,
//! still nothing against a token of any real length. IPv6 clients are
//! counted per /64, the block one host usually holds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

/// Wrong tokens an address may send at once, and per minute.
pub const WRONG_PER_MINUTE: u32 = 10;

/// Addresses tracked at most: past this, buckets that are full again are
/// dropped, and a new address is not tracked until there is room.
const MAX_TRACKED: usize = 100_000;

/// The address a request came from, as the listener saw it (no proxy
/// header is trusted: one that says where a request came from is written by
/// the client itself unless a proxy overwrites it). `None` when the request
/// did not come through ingest's listener (router tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

impl ClientAddr {
    pub fn of(parts: &Parts) -> Self {
        Self::from_extensions(&parts.extensions)
    }

    pub fn from_extensions(ext: &axum::http::Extensions) -> Self {
        Self(
            ext.get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_canonical()),
        )
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

/// What addresses are counted by: an IPv4 address, or an IPv6 /64.
fn bucket_key(addr: ClientAddr) -> Option<IpAddr> {
    addr.0.map(|ip| match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    })
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let per_sec = f64::from(WRONG_PER_MINUTE) / 60.0;
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * per_sec;
        self.tokens = (self.tokens + gained).min(f64::from(WRONG_PER_MINUTE));
        self.at = now;
    }

    fn is_full(&self) -> bool {
        self.tokens >= f64::from(WRONG_PER_MINUTE)
    }

    /// Seconds until one more guess is allowed (at least 1).
    fn wait(&self) -> u64 {
        let per_sec = f64::from(WRONG_PER_MINUTE) / 60.0;
        ((1.0 - self.tokens) / per_sec).ceil().max(1.0) as u64
    }
}

/// The buckets of every address that sent a wrong token lately.
#[derive(Debug, Default)]
pub struct TokenGuard {
    buckets: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

/// An address over its limit: seconds until it may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: u64,
}

impl TokenGuard {
    /// Before a token from `addr` is compared: takes one of the address's
    /// guesses, or refuses while it has none left (counted, and logged at
    /// debug level only: a flood would flood the log). Taking the guess
    /// before the comparison keeps the limit exact when guesses arrive at
    /// once; [`TokenGuard::right`] gives it back.
    pub fn admit(&self, addr: ClientAddr) -> Result<(), Throttled> {
        self.admit_at(addr, Instant::now())
    }

    fn admit_at(&self, addr: ClientAddr, now: Instant) -> Result<(), Throttled> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let key = bucket_key(addr);
        if !buckets.contains_key(&key) {
            if buckets.len() >= MAX_TRACKED {
                buckets.retain(|_, b| {
                    b.refill(now);
                    !b.is_full()
                });
            }
            if buckets.len() >= MAX_TRACKED {
                return Ok(());
            }
            let tokens = f64::from(WRONG_PER_MINUTE);
            buckets.insert(key, Bucket { tokens, at: now });
        }
        let Some(bucket) = buckets.get_mut(&key) else {
            return Ok(());
        };
        bucket.refill(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let retry_after = bucket.wait();
        drop(buckets);
        metrics::counter!("objectsync_admin_token_refusals_total", "reason" => "throttled")
            .increment(1);
        tracing::debug!(client = %addr, "admin token attempt refused: too many wrong tokens");
        Err(Throttled { retry_after })
    }

    /// After the right token from `addr` (or none at all, which is no
    /// guess): gives back the guess [`TokenGuard::admit`] took.
    pub fn right(&self, addr: ClientAddr) {
        self.right_at(addr, Instant::now());
    }

    fn right_at(&self, addr: ClientAddr, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let key = bucket_key(addr);
        if let Some(b) = buckets.get_mut(&key) {
            b.refill(now);
            b.tokens = (b.tokens + 1.0).min(f64::from(WRONG_PER_MINUTE));
            if b.is_full() {
                buckets.remove(&key);
            }
        }
    }

    /// After a wrong token from `addr` (`what`: the console login, the
    /// admin API): the guess stays spent; counted and logged with the
    /// address.
    pub fn wrong(&self, addr: ClientAddr, what: &str) {
        metrics::counter!("objectsync_admin_token_refusals_total", "reason" => "wrong")
            .increment(1);
        let left = {
            let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            buckets.get(&bucket_key(addr)).map(|b| b.tokens)
        };
        match left {
            Some(left) if left < 1.0 => tracing::warn!(
                client = %addr,
                "{what}: wrong admin token; this address sent {WRONG_PER_MINUTE} in a minute \
                 and is refused (429) until it slows down"
            ),
            Some(_) => tracing::warn!(client = %addr, "{what}: wrong admin token"),
            None => tracing::warn!(
                client = %addr,
                "{what}: wrong admin token (not throttled: {MAX_TRACKED} addresses already are)"
            ),
        }
    }
}

/// Compares two secrets without leaking, through timing, how much matched.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// How long a throttled address waits, for messages.
pub fn wait_text(t: Throttled) -> String {
    format!(
        "too many wrong admin tokens from your address (at most {WRONG_PER_MINUTE} a minute); \
         try again in {} s",
        t.retry_after
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ip: &str) -> ClientAddr {
        ClientAddr(Some(ip.parse().unwrap()))
    }

    /// A guess from `addr` at `now`, right or wrong.
    fn guess(
        guard: &TokenGuard,
        addr: ClientAddr,
        right: bool,
        now: Instant,
    ) -> Result<(), Throttled> {
        guard.admit_at(addr, now)?;
        if right {
            guard.right_at(addr, now);
        } else {
            guard.wrong(addr, "test");
        }
        Ok(())
    }

    #[test]
    fn ten_wrong_tokens_a_minute_then_429_for_that_address_only() {
        let guard = TokenGuard::default();
        let t0 = Instant::now();
        let eve = at("192.0.2.7");
        for _ in 0..WRONG_PER_MINUTE {
            assert_eq!(guess(&guard, eve, false, t0), Ok(()));
        }
        let refused = Err(Throttled { retry_after: 6 });
        assert_eq!(guess(&guard, eve, false, t0), refused);
        assert_eq!(guess(&guard, eve, true, t0), refused, "not even compared");
        assert_eq!(guess(&guard, at("192.0.2.8"), true, t0), Ok(()));
        assert_eq!(guess(&guard, ClientAddr(None), false, t0), Ok(()));
        // One guess back every 6 s.
        let later = t0 + Duration::from_secs(6);
        assert_eq!(guess(&guard, eve, false, later), Ok(()));
        assert!(guess(&guard, eve, false, later).is_err());
        assert!(guess(&guard, eve, true, later + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn guesses_in_flight_count_and_right_tokens_spend_nothing() {
        let guard = TokenGuard::default();
        let t0 = Instant::now();
        let eve = at("192.0.2.7");
        // Admitted at once, before any of them is found wrong.
        let admitted = (0..30).filter(|_| guard.admit_at(eve, t0).is_ok()).count();
        assert_eq!(admitted, WRONG_PER_MINUTE as usize);
        let ada = at("192.0.2.9");
        for _ in 0..100 {
            assert_eq!(guess(&guard, ada, true, t0), Ok(()));
        }
        let tracked = guard.buckets.lock().unwrap().len();
        assert_eq!(tracked, 1, "a right token leaves no bucket behind");
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let guard = TokenGuard::default();
        let t0 = Instant::now();
        for i in 0..WRONG_PER_MINUTE {
            assert!(guess(&guard, at(&format!("2001:db8:1:2::{i:x}")), false, t0).is_ok());
        }
        assert!(guard.admit_at(at("2001:db8:1:2:ffff::1"), t0).is_err());
        assert!(guard.admit_at(at("2001:db8:1:3::1"), t0).is_ok());
        // An IPv4 client seen through an IPv6 socket is the IPv4 address.
        let mapped = ClientAddr(Some(
            "::ffff:192.0.2.1".parse::<IpAddr>().unwrap().to_canonical(),
        ));
        assert_eq!(mapped.to_string(), "192.0.2.1");
    }

    #[test]
    fn secrets_compare() {
        assert!(secrets_match("token", "token"));
        assert!(!secrets_match("token", "tokeN"));
        assert!(!secrets_match("", "token"));
    }
}
