//! Per-organization rate limits and the backlog cap, and the headers that
//! say where a client stands.
//!
//! Rate limits are token buckets, one per organization and class of
//! request (writes: batch upserts and deletes; reads: everything else under
//! `/v3`), kept in PostgreSQL (`objectsync_store::limits`), so the limit
//! holds for the organization as a whole across every ingest replica: each
//! request takes its token in one statement.
//!
//! Every answer of a limited request carries Brevo's headers, describing
//! the limit that decided it, in whole seconds rounded up:
//! - `x-sib-ratelimit-limit`: the requests the bucket holds (its burst);
//! - `x-sib-ratelimit-remaining`: the requests it would accept now;
//! - `x-sib-ratelimit-reset`: seconds until `remaining` goes up by one
//!   (0 when it is `limit`): when the client may send again once it is 0;
//! - on a `429`, `Retry-After`: seconds until a request would be accepted,
//!   the same instant as `reset`.
//!
//! A batch refused by the backlog cap gives its token back, and its answer
//! describes the cap: `limit` the cap, `remaining` 0, `reset` and
//! `Retry-After` [`BACKLOG_RETRY_AFTER_SECS`].

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use objectsync_infra::settings::LimitSettings;
use objectsync_model::limits::BACKLOG_RETRY_AFTER_SECS;
use objectsync_model::{ApiCode, OrgId};
use objectsync_store::GenericClient;
use objectsync_store::limits::{self, Class, Rate, Taken};
use objectsync_store::organizations::{KeyOwner, Limits};

use crate::error::ApiError;

/// Most seconds a header says: a token's time at the slowest valid rate.
const MAX_HEADER_SECS: f64 = 1.0 / LimitSettings::MIN_PER_SECOND;

/// An organization's limits: its own where set, else the settings'.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Effective {
    pub(crate) writes: Rate,
    pub(crate) reads: Rate,
    /// 0: no cap.
    pub(crate) max_open_processes: i64,
}

impl Effective {
    pub(crate) fn of(defaults: &LimitSettings, own: &Limits) -> Self {
        Self {
            writes: within_range(
                own.writes_per_second.unwrap_or(defaults.writes_per_second),
                own.writes_burst.unwrap_or(defaults.writes_burst),
            ),
            reads: within_range(
                own.reads_per_second.unwrap_or(defaults.reads_per_second),
                own.reads_burst.unwrap_or(defaults.reads_burst),
            ),
            max_open_processes: own
                .max_open_processes
                .map_or(defaults.max_open_processes, i64::from)
                .clamp(0, LimitSettings::MAX_OPEN_PROCESSES),
        }
    }
}

/// A bucket's rule within the valid ranges, whatever was stored (values
/// set before the ranges were checked, or an organization's own rate with
/// the default burst of a bucket that is off): a rate of 0 (or not a
/// number) is off.
fn within_range(per_second: f64, burst: f64) -> Rate {
    if per_second.is_nan() || per_second <= 0.0 {
        return Rate {
            per_second: 0.0,
            burst,
        };
    }
    Rate {
        per_second: per_second.clamp(LimitSettings::MIN_PER_SECOND, LimitSettings::MAX_PER_SECOND),
        burst: if burst.is_nan() {
            1.0
        } else {
            burst.clamp(1.0, LimitSettings::MAX_BURST)
        },
    }
}

/// What a limit said about one request, for its answer's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    limit: u64,
    remaining: u64,
    /// Seconds until `remaining` goes up by one; 0 when it is `limit`.
    reset: u64,
    /// Seconds until a request would be accepted, when refused.
    retry_after: Option<u64>,
}

/// `secs` in whole seconds for a header: rounded up, within
/// 0..=[`MAX_HEADER_SECS`].
fn whole_secs(secs: f64) -> u64 {
    if secs > 0.0 {
        secs.ceil().min(MAX_HEADER_SECS) as u64
    } else {
        0
    }
}

impl Verdict {
    /// The verdict of a bucket of `rate` that holds `taken.tokens` now.
    fn of(rate: Rate, taken: Taken) -> Self {
        let tokens = if taken.tokens.is_nan() {
            0.0
        } else {
            taken.tokens.clamp(0.0, rate.burst)
        };
        let (limit, remaining) = (rate.burst.floor(), tokens.floor());
        let reset = if remaining >= limit {
            0
        } else {
            whole_secs((remaining + 1.0 - tokens) / rate.per_second)
        };
        Self {
            limit: limit as u64,
            remaining: remaining as u64,
            reset,
            retry_after: (!taken.allowed).then_some(reset.max(1)),
        }
    }

    /// The verdict of the backlog cap on a batch it refused.
    fn backlog(cap: i64) -> Self {
        Self {
            limit: u64::try_from(cap).unwrap_or(0),
            remaining: 0,
            reset: BACKLOG_RETRY_AFTER_SECS,
            retry_after: Some(BACKLOG_RETRY_AFTER_SECS),
        }
    }
}

/// Where the extractor leaves the verdict for the middleware.
pub(crate) type Slot = Arc<Mutex<Option<Verdict>>>;

/// The middleware: gives the request a slot for the verdict, and puts the
/// verdict's headers on whatever the answer is (a 202 as well as a 429).
pub(crate) async fn headers(mut req: Request, next: Next) -> Response {
    let slot: Slot = Arc::default();
    req.extensions_mut().insert(slot.clone());
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    for (name, value) in verdict_headers(&slot) {
        h.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    response
}

/// The headers that say what the limit in `slot` decided, if one did (the
/// HTTP answer's, and the inbox reply's).
pub(crate) fn verdict_headers(slot: &Slot) -> Vec<(&'static str, u64)> {
    let verdict = *slot.lock().unwrap_or_else(|e| e.into_inner());
    let Some(v) = verdict else {
        return Vec::new();
    };
    let mut out = vec![
        ("x-sib-ratelimit-limit", v.limit),
        ("x-sib-ratelimit-remaining", v.remaining),
        ("x-sib-ratelimit-reset", v.reset),
    ];
    if let Some(after) = v.retry_after {
        out.push(("retry-after", after));
    }
    out
}

/// The class of an HTTP request (a batch from the inbox is a write).
pub(crate) fn class(method: &Method) -> Class {
    if method == Method::GET || method == Method::HEAD {
        Class::Reads
    } else {
        Class::Writes
    }
}

/// Takes a token for a request of `owner`, or refuses it with 429.
pub(crate) async fn check(
    client: &impl GenericClient,
    owner: &KeyOwner,
    limits: &Effective,
    class: Class,
    slot: Option<&Slot>,
) -> Result<(), ApiError> {
    let rate = match class {
        Class::Writes => limits.writes,
        Class::Reads => limits.reads,
    };
    if rate.per_second <= 0.0 {
        return Ok(());
    }
    let taken = limits::take(client, owner.org, class, rate).await?;
    let verdict = Verdict::of(rate, taken);
    if let Some(slot) = slot {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict);
    }
    if taken.allowed {
        return Ok(());
    }
    metrics::counter!("objectsync_requests_limited_total", "reason" => format!("rate_{}", class.as_str()))
        .increment(1);
    Err(ApiError::new(
        ApiCode::TooManyRequests,
        format!(
            "Too many {} requests for this organization: at most {} a second, {} at once; retry after {} s",
            match class {
                Class::Writes => "write",
                Class::Reads => "read",
            },
            rate.per_second,
            rate.burst,
            verdict.retry_after.unwrap_or(1)
        ),
    ))
}

/// A batch refused by the backlog cap after it took a write token: the
/// token is given back (a refused request spends nothing), and the answer's
/// headers describe the cap.
pub(crate) async fn backlog_refused(
    pool: &deadpool_postgres::Pool,
    org: OrgId,
    limits: &Effective,
    slot: Option<&Slot>,
) {
    if limits.writes.per_second > 0.0 {
        let given = match pool.get().await {
            Ok(client) => limits::give_back(&client, org, Class::Writes, limits.writes).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = given {
            tracing::warn!(error = %e, "could not give back the token of a batch refused by the backlog cap");
        }
    }
    if let Some(slot) = slot {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Verdict::backlog(limits.max_open_processes));
    }
}

/// The slot of a request that went through [`headers`].
pub(crate) fn slot(parts: &axum::http::request::Parts) -> Option<&Slot> {
    parts.extensions.get::<Slot>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: f64, burst: f64) -> Rate {
        Rate { per_second, burst }
    }

    fn verdict(r: Rate, allowed: bool, tokens: f64) -> Verdict {
        Verdict::of(r, Taken { allowed, tokens })
    }

    #[test]
    fn headers_say_what_is_left_and_when_one_more_comes() {
        let ok = verdict(rate(2.0, 10.0), true, 7.5);
        assert_eq!(
            (ok.limit, ok.remaining, ok.reset, ok.retry_after),
            (10, 7, 1, None)
        );
        let full = verdict(rate(2.0, 10.0), true, 10.0);
        assert_eq!((full.remaining, full.reset), (10, 0));
        let slow = verdict(rate(0.1, 1.0), false, 0.0);
        assert_eq!((slow.reset, slow.retry_after), (10, Some(10)));
    }

    /// Brevo's `reset` is when a client that ran out may send again: on a
    /// 429 it is `Retry-After`, never the time to refill the whole bucket
    /// (the 429 said `reset: 2` and `retry-after: 1`).
    #[test]
    fn a_refusal_says_one_instant_in_both_headers() {
        let refused = verdict(rate(5.0, 10.0), false, 0.2);
        assert_eq!((refused.remaining, refused.reset), (0, 1));
        assert_eq!(refused.retry_after, Some(refused.reset));
        for per_second in [0.001, 0.3, 1.0, 5.0, 1e6] {
            for burst in [1.0, 2.5, 10.0, 1e6] {
                for tokens in [0.0, 0.1, 0.5, 0.999_999] {
                    let v = verdict(rate(per_second, burst), false, tokens);
                    assert_eq!(
                        v.retry_after,
                        Some(v.reset),
                        "{per_second} {burst} {tokens}"
                    );
                    assert!(v.reset >= 1 && v.remaining == 0);
                    // Waiting `reset` seconds gives a token back.
                    assert!(tokens + v.reset as f64 * per_second >= 1.0 - 1e-9);
                }
            }
        }
    }

    #[test]
    fn headers_stay_within_range_whatever_was_stored() {
        let tiny = Effective::of(
            &LimitSettings::UNLIMITED,
            &Limits {
                writes_per_second: Some(1e-300),
                writes_burst: Some(9e18),
                ..Limits::default()
            },
        );
        assert_eq!(tiny.writes, rate(0.001, 1e6));
        let v = verdict(tiny.writes, false, 0.0);
        assert_eq!(
            (v.limit, v.reset, v.retry_after),
            (1_000_000, 1000, Some(1000))
        );
        // An organization's own rate with the default burst of a bucket
        // that is off: a bucket of one.
        let own_rate = Effective::of(
            &LimitSettings::UNLIMITED,
            &Limits {
                reads_per_second: Some(2.0),
                ..Limits::default()
            },
        );
        assert_eq!(own_rate.reads, rate(2.0, 1.0));
        assert_eq!(
            verdict(rate(1.0, 3.0), false, f64::NAN).retry_after,
            Some(1)
        );
        assert_eq!(whole_secs(f64::INFINITY), 1000);
        assert_eq!(whole_secs(f64::NAN), 0);
        let backlog = Verdict::backlog(5);
        assert_eq!((backlog.limit, backlog.remaining, backlog.reset), (5, 0, 5));
    }
}
