//! Per-organization rate limits and the backlog cap.
//!
//! Rate limits are token buckets, one per organization and class of
//! request (writes: batch upserts and deletes; reads: everything else under
//! `/v3`), kept in PostgreSQL (`objectsync_store::limits`), so the limit
//! holds for the organization as a whole across every ingest replica: each
//! request takes its token in one statement. Every answer of a limited
//! request carries Brevo's headers, `x-sib-ratelimit-limit` (the bucket's
//! size), `x-sib-ratelimit-remaining` (tokens left) and
//! `x-sib-ratelimit-reset` (seconds until the bucket is full again); a
//! refused request is `429` with `Retry-After` (seconds until a token).

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use objectsync_infra::settings::LimitSettings;
use objectsync_model::ApiCode;
use objectsync_store::GenericClient;
use objectsync_store::limits::{self, Class, Rate, Taken};
use objectsync_store::organizations::{KeyOwner, Limits};

use crate::error::ApiError;

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
            writes: Rate {
                per_second: own.writes_per_second.unwrap_or(defaults.writes_per_second),
                burst: own.writes_burst.unwrap_or(defaults.writes_burst),
            },
            reads: Rate {
                per_second: own.reads_per_second.unwrap_or(defaults.reads_per_second),
                burst: own.reads_burst.unwrap_or(defaults.reads_burst),
            },
            max_open_processes: own
                .max_open_processes
                .map_or(defaults.max_open_processes, i64::from),
        }
    }
}

/// What the limit said about one request, for its answer's headers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Verdict {
    limit: f64,
    remaining: f64,
    /// Seconds until the bucket is full again.
    reset: u64,
    /// Seconds until a token, when refused.
    retry_after: Option<u64>,
}

impl Verdict {
    fn of(rate: Rate, taken: Taken) -> Self {
        let per_second = rate.per_second.max(f64::MIN_POSITIVE);
        Self {
            limit: rate.burst,
            remaining: taken.tokens.max(0.0),
            reset: ((rate.burst - taken.tokens).max(0.0) / per_second).ceil() as u64,
            retry_after: (!taken.allowed)
                .then(|| ((1.0 - taken.tokens).max(0.0) / per_second).ceil().max(1.0) as u64),
        }
    }
}

/// Where the extractor leaves the verdict for the middleware.
type Slot = Arc<Mutex<Option<Verdict>>>;

/// The middleware: gives the request a slot for the verdict, and puts the
/// verdict's headers on whatever the answer is (a 202 as well as a 429).
pub(crate) async fn headers(mut req: Request, next: Next) -> Response {
    let slot: Slot = Arc::default();
    req.extensions_mut().insert(slot.clone());
    let mut response = next.run(req).await;
    let verdict = *slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = verdict {
        let h = response.headers_mut();
        let mut put = |name: &'static str, value: u64| {
            h.insert(HeaderName::from_static(name), HeaderValue::from(value));
        };
        put("x-sib-ratelimit-limit", v.limit.floor() as u64);
        put("x-sib-ratelimit-remaining", v.remaining.floor() as u64);
        put("x-sib-ratelimit-reset", v.reset);
        if let Some(after) = v.retry_after {
            put("retry-after", after);
        }
    }
    response
}

/// The class of a request.
fn class(method: &Method) -> Class {
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
    method: &Method,
    slot: Option<&Slot>,
) -> Result<(), ApiError> {
    let class = class(method);
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

/// The slot of a request that went through [`headers`].
pub(crate) fn slot(parts: &axum::http::request::Parts) -> Option<&Slot> {
    parts.extensions.get::<Slot>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_say_what_is_left_and_when() {
        let rate = Rate {
            per_second: 2.0,
            burst: 10.0,
        };
        let ok = Verdict::of(
            rate,
            Taken {
                allowed: true,
                tokens: 7.5,
            },
        );
        assert_eq!(
            (ok.remaining.floor(), ok.reset, ok.retry_after),
            (7.0, 2, None)
        );
        let refused = Verdict::of(
            rate,
            Taken {
                allowed: false,
                tokens: 0.2,
            },
        );
        assert_eq!(refused.retry_after, Some(1));
        let slow = Verdict::of(
            Rate {
                per_second: 0.1,
                burst: 1.0,
            },
            Taken {
                allowed: false,
                tokens: 0.0,
            },
        );
        assert_eq!(slow.retry_after, Some(10));
    }
}
