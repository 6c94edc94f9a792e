//! Request bodies: a deadline for the whole body, and what happens to the
//! part of a body that the answer did not need.
//!
//! A request may be answered before its body is read: a `429` of the rate
//! limit, a `401`, a `413` past the body limit. If the body is then left on
//! the connection, HTTP/1.1 cannot go on to the next request, and the
//! server can only close the connection — which a client still writing its
//! body, or about to reuse the connection, sees as a reset rather than as
//! the answer. So the rest of such a body is read and dropped before the
//! answer goes out (up to the body limit, `MAX_BODY_BYTES`), and the
//! connection is kept; a body that cannot be drained (larger than the
//! limit, or not arrived by its deadline) gets `connection: close` on its
//! answer instead, and the connection is closed so that the answer can be
//! read first (see `crate::linger`).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};
use objectsync_model::limits::MAX_BODY_BYTES;
use tokio::time::{Instant, Sleep};

/// The body did not arrive whole by its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?} of its headers")]
pub(crate) struct BodyDeadline(Duration);

/// What a request's body left behind once its answer was made.
#[derive(Default)]
struct Leftover {
    rest: Mutex<Option<Body>>,
}

/// A request body with a deadline for all of it, which hands what was not
/// read back to [`guard`] when dropped.
struct Guarded {
    inner: Body,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    ended: bool,
    leftover: Arc<Leftover>,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(frame) => Poll::Ready(frame),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err(axum::Error::new(BodyDeadline(self.timeout)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if !self.is_end_stream() {
            let rest = std::mem::take(&mut self.inner);
            *self.leftover.rest.lock().unwrap_or_else(|e| e.into_inner()) = Some(rest);
        }
    }
}

/// The middleware: gives the request's body `timeout` from now to arrive
/// whole, and once the answer is made, drains what is left of the body or
/// marks the answer `connection: close`.
pub(crate) async fn guard(timeout: Duration, req: Request, next: Next) -> Response {
    let deadline = Instant::now() + timeout;
    let leftover = Arc::new(Leftover::default());
    let declared = content_length(&req);
    let waits_for_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let req = req.map(|inner| {
        Body::new(Guarded {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            ended: false,
            leftover: leftover.clone(),
        })
    });
    let mut response = next.run(req).await;
    let rest = leftover
        .rest
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(rest) = rest {
        // A client waiting for `100 Continue` has not sent its body and
        // will not once it has the answer; one that declared more than the
        // limit is not worth reading.
        let drainable = !waits_for_continue && declared.is_none_or(|n| n <= MAX_BODY_BYTES as u64);
        if !(drainable && drain(rest, deadline).await) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// Reads and drops `body` until its end, at most `MAX_BODY_BYTES`, until
/// `deadline`; whether it ended.
async fn drain(mut body: Body, deadline: Instant) -> bool {
    let mut read = 0usize;
    let reading = async {
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let Ok(frame) = frame else { return false };
            read += frame.data_ref().map_or(0, Bytes::len);
            if read > MAX_BODY_BYTES {
                return false;
            }
        }
        true
    };
    tokio::time::timeout_at(deadline, reading).await == Ok(true)
}

/// The declared length of a request's body (none for a chunked one).
fn content_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
