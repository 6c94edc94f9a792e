//! `probe`: asks this host's `/readyz` whether the service is ready, for
//! container health checks in images that have no `curl`.
//!
//! Both binaries expose it as a subcommand (`objectsync-ingest probe`,
//! `objectsync-worker probe`). It sends one HTTP/1.0 `GET /readyz` to
//! `127.0.0.1:{port}` over a plain TCP connection and reads the status line:
//! 200 is ready, anything else (another status, no answer within the time
//! limit, nothing listening) is not.

use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::settings::{Role, Settings};

/// How long the whole probe may take by default. `/readyz` gives each of
/// its checks two seconds, so this leaves it room to answer 503 itself.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the service is not ready.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("could not ask 127.0.0.1:{port}: {source}")]
    Io { port: u16, source: io::Error },
    #[error("no answer from 127.0.0.1:{port} within {timeout:?}")]
    Timeout { port: u16, timeout: Duration },
    #[error("127.0.0.1:{port} did not answer HTTP: {line:?}")]
    NotHttp { port: u16, line: String },
    #[error("/readyz answered {status}")]
    NotReady { status: u16 },
}

/// `Ok` when `GET http://127.0.0.1:{port}/readyz` answers 200 within
/// `timeout`.
pub async fn readyz(port: u16, timeout: Duration) -> Result<(), ProbeError> {
    match tokio::time::timeout(timeout, status_of(port, "/readyz")).await {
        Err(_) => Err(ProbeError::Timeout { port, timeout }),
        Ok(Err(source)) => Err(ProbeError::Io { port, source }),
        Ok(Ok(Err(line))) => Err(ProbeError::NotHttp { port, line }),
        Ok(Ok(Ok(200))) => Ok(()),
        Ok(Ok(Ok(status))) => Err(ProbeError::NotReady { status }),
    }
}

/// The status code of `GET {path}`, or the first line if it is not an HTTP
/// status line.
async fn status_of(port: u16, path: &str) -> io::Result<Result<u16, String>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    // The status line is all that is needed: read until its end (or until
    // the server closes, or 1 KiB, whichever comes first).
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or("").to_owned();
    // "HTTP/1.1 200 OK"
    let mut words = line.split_ascii_whitespace();
    let status = match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code.parse().ok(),
        _ => None,
    };
    Ok(status.ok_or(line))
}

/// The `probe` subcommand of both binaries: probes `port`, or the port the
/// settings (`config` file and environment) give `role`. Prints the outcome
/// and exits 0 when ready, 1 otherwise — also for bad settings, since a
/// health check reads every code but 0 as unhealthy and Docker reserves 2.
pub async fn run(role: Role, config: Option<&Path>, port: Option<u16>) -> ExitCode {
    let port = match port {
        Some(port) => port,
        None => match Settings::load(role, config) {
            Ok(settings) => settings.http.port,
            Err(e) => {
                eprintln!("probe: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match readyz(port, DEFAULT_TIMEOUT).await {
        Ok(()) => {
            println!("ready");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("not ready: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tokio::net::TcpListener;

    use super::*;

    /// A server on a free port whose `/readyz` answers `status`.
    async fn serve(status: StatusCode) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new().route("/readyz", get(move || async move { (status, "{}") }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    }

    #[tokio::test]
    async fn ready_when_readyz_answers_200() {
        let port = serve(StatusCode::OK).await;
        readyz(port, Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn not_ready_when_readyz_answers_503() {
        let port = serve(StatusCode::SERVICE_UNAVAILABLE).await;
        let e = readyz(port, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(e, ProbeError::NotReady { status: 503 }), "{e}");
    }

    #[tokio::test]
    async fn not_ready_when_nothing_listens() {
        // Bind then drop: the port was free a moment ago and nobody holds it.
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().port()
        };
        let e = readyz(port, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(e, ProbeError::Io { .. }), "{e}");
    }

    #[tokio::test]
    async fn not_ready_when_no_answer_comes_in_time() {
        // Accepts the connection and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        });
        let e = readyz(port, Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(e, ProbeError::Timeout { .. }), "{e}");
        held.abort();
    }

    #[tokio::test]
    async fn not_ready_when_the_answer_is_not_http() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            // Read the request first, so that closing sends no reset.
            let _ = socket.read(&mut [0u8; 1024]).await;
            let _ = socket.write_all(b"AMQP\x00\x00\x09\x01").await;
        });
        let e = readyz(port, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(e, ProbeError::NotHttp { .. }), "{e}");
    }
}
