//! Closing a connection so that its last answer can be read.
//!
//! When a server closes a TCP connection while the client's data is still
//! arriving unread, the system answers the client's data with a reset, and
//! a reset can destroy the answer the client has not read yet: the client
//! sees "connection reset" instead of the `413` or `429` it was sent. So
//! after an answer that said `connection: close` (see
//! `crate::request_body`), the server first sends its end of the
//! connection, then reads and drops what the client still sends until the
//! client closes too, for [`LINGER`] at most — the "lingering close" of
//! HTTP/1.1 servers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{Request, Response, header};
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Longest a closing connection is read from after its last answer.
const LINGER: Duration = Duration::from_secs(5);

/// A service that notes an answer saying `connection: close`, with boxed
/// futures (hyper serves a connection without closing its socket only for
/// a service whose futures are `Unpin`).
struct Noting<S> {
    inner: S,
    closing: Arc<AtomicBool>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for Noting<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<B>, S::Error>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let closing = self.closing.clone();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await?;
            if response
                .headers()
                .get(header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
            {
                closing.store(true, Ordering::Relaxed);
            }
            Ok(response)
        })
    }
}

/// Serves `stream` with `service` until the connection ends (or, once
/// `cancel` fires, until its request in flight is answered), then closes
/// it, lingering after an answer that said `connection: close`.
pub(crate) async fn serve_connection<S, B>(
    http: &Builder,
    stream: TcpStream,
    service: S,
    cancel: &CancellationToken,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Unpin,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let closing = Arc::new(AtomicBool::new(false));
    let service = Noting {
        inner: service,
        closing: closing.clone(),
    };
    let mut conn = http.serve_connection(TokioIo::new(stream), service);
    let served = tokio::select! {
        served = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => Some(served),
        () = cancel.cancelled() => None,
    };
    if served.is_none() {
        Pin::new(&mut conn).graceful_shutdown();
        let _ = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)).await;
    }
    let mut stream = conn.into_parts().io.into_inner();
    let _ = stream.shutdown().await;
    if closing.load(Ordering::Relaxed) {
        tokio::select! {
            () = linger(&mut stream) => {}
            () = cancel.cancelled() => {}
        }
    }
}

/// Reads and drops what the client sends until it closes, [`LINGER`] at most.
async fn linger(stream: &mut TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
