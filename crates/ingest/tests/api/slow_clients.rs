//! Slow clients: connections that dribble their headers or body, or sit
//! idle, are cut after the configured timeouts, and a normal request is
//! served meanwhile; at the connection cap, new connections wait.

use std::time::{Duration, Instant};

use objectsync_testkit::{TestApp, spawn_app_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// Reads until the server closes the connection; what it sent, and when
/// it closed (`None`: still open at `limit`).
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Instant>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return (got, None),
            Ok(Ok(0) | Err(_)) => return (got, Some(Instant::now())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A slow-loris client: the start of a request, then one byte of header
/// every 200 ms until the server hangs up.
async fn dribble(port: u16) -> Option<Duration> {
    let started = Instant::now();
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        if write
            .write_all(b"GET /v3/processes HTTP/1.1\r\nhost: x\r\n")
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(b"x").await.is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    writer.abort();
    closed.ok().map(|()| started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_slow_loris_connections_are_cut_while_a_normal_request_is_served() {
    let app = spawn_app_with(0, |s| s.http.header_timeout_ms = 1_000).await;
    let org = app.org_with_vehicles().await;
    let port = port(&app);
    let slow: Vec<_> = (0..50).map(|_| tokio::spawn(dribble(port))).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let resp = app.get(&org.key, "/v3/processes").await;
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a normal request waited {:?} behind slow clients",
        started.elapsed()
    );

    for handle in slow {
        let held = handle.await.unwrap().expect("a slow client was never cut");
        assert!(held < Duration::from_secs(5), "held for {held:?}");
    }
}

#[tokio::test]
async fn a_body_that_stops_coming_is_given_up_on() {
    let app = spawn_app_with(0, |s| s.http.body_timeout_ms = 500).await;
    let org = app.org_with_vehicles().await;
    let mut stream = TcpStream::connect(("127.0.0.1", port(&app))).await.unwrap();
    let head = format!(
        "POST /v3/objects/vehicle/batch/upsert HTTP/1.1\r\nhost: x\r\napi-key: {}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"records\": [",
        org.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (answer, closed) = until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "the connection stayed open");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("bad_request"), "{answer}");
    // Nothing was accepted.
    assert_eq!(app.process_count().await, 0);
}

/// A body that keeps coming, one byte at a time, is cut at the deadline
/// for the whole body, however short the pauses between bytes.
#[tokio::test]
async fn a_body_trickled_a_byte_at_a_time_is_cut_at_its_deadline() {
    let app = spawn_app_with(0, |s| s.http.body_timeout_ms = 1_000).await;
    let org = app.org_with_vehicles().await;
    let stream = TcpStream::connect(("127.0.0.1", port(&app))).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /v3/objects/vehicle/batch/upsert HTTP/1.1\r\nhost: x\r\napi-key: {}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n",
        org.key
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    trickle.abort();
    assert!(got.is_ok(), "still reading the body after 10 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.process_count().await, 0);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with(0, |s| s.http.header_timeout_ms = 500).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port(&app))).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle = Instant::now();
    let (_, closed) = until_closed(&mut stream, Duration::from_secs(10)).await;
    let closed = closed.expect("the idle connection stayed open");
    assert!(
        closed - idle < Duration::from_secs(3),
        "{:?}",
        closed - idle
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_new_connections_wait_for_a_free_one() {
    let app = spawn_app_with(0, |s| {
        s.http.max_connections = 4;
        s.http.header_timeout_ms = 1_000;
    })
    .await;
    let port = port(&app);
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Served once the idle ones are cut, not refused.
    let started = Instant::now();
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let waited = started.elapsed();
    assert!(waited > Duration::from_millis(500), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("objectsync_http_connection_cap_reached_total"),
        "{metrics}"
    );
    drop(idle);
}
