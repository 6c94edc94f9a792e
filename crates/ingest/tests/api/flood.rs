//! Floods: several keep-alive clients sending full-size batches into a
//! rate limit, into the backlog cap and past the body limit. Every request
//! gets an HTTP answer; a connection is only ever closed after an answer
//! that said `connection: close`.
//!
//! The clients are raw HTTP/1.1 over TCP, one request at a time per
//! connection, written whole before the answer is read (as Python's
//! `http.client` and most SDKs do), so nothing hides a lost connection by
//! retrying on another one.

use std::collections::HashMap;
use std::io;

use objectsync_infra::settings::LimitSettings;
use objectsync_model::limits::MAX_BODY_BYTES;
use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One answer, as a client saw it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<u64> {
        self.headers.get(name).map(|v| v.parse().unwrap())
    }

    fn closes(&self) -> bool {
        self.headers
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A keep-alive client: reuses its connection until an answer says
/// `connection: close`.
pub(crate) struct KeepAlive {
    port: u16,
    stream: Option<TcpStream>,
    /// Bytes read past the last answer.
    pending: Vec<u8>,
}

impl KeepAlive {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self {
            port: app.address.rsplit(':').next().unwrap().parse().unwrap(),
            stream: None,
            pending: Vec::new(),
        }
    }

    /// Sends `POST path` with `body`; an error is a connection that broke
    /// (reset, or closed before a whole answer).
    pub(crate) async fn post(&mut self, key: &str, path: &str, body: &[u8]) -> io::Result<Answer> {
        if self.stream.is_none() {
            self.stream = Some(TcpStream::connect(("127.0.0.1", self.port)).await?);
            self.pending.clear();
        }
        let stream = self.stream.as_mut().unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\napi-key: {key}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let sent = async {
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body).await
        };
        let answer = match sent.await {
            Ok(()) => read_answer(stream, &mut self.pending).await,
            Err(e) => Err(e),
        };
        match &answer {
            Ok(a) if !a.closes() => {}
            _ => self.stream = None,
        }
        answer
    }
}

async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> io::Result<Answer> {
    let mut buf = [0u8; 16 * 1024];
    let closed = || io::Error::new(io::ErrorKind::UnexpectedEof, "closed without an answer");
    let end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(closed());
        }
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .map_or(0, |v| v.parse().unwrap());
    pending.drain(..end);
    while pending.len() < length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(closed());
        }
        pending.extend_from_slice(&buf[..n]);
    }
    let body = pending.drain(..length).collect();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// An upsert of 1,000 records just under the 1 MiB body limit.
pub(crate) fn full_batch() -> Vec<u8> {
    let name = "n".repeat(980);
    let records: Vec<_> = (0..1000)
        .map(|i| json!({"identifiers": {"ext_id": format!("v{i:04}")}, "attributes": {"name": name}}))
        .collect();
    let body = json!({ "records": records }).to_string().into_bytes();
    assert!(
        body.len() <= MAX_BODY_BYTES && body.len() > MAX_BODY_BYTES * 9 / 10,
        "{}",
        body.len()
    );
    body
}

/// What `clients` clients sending `each` batches of `body` got: the
/// answers by status, and the connection errors.
async fn flood(
    app: &TestApp,
    org: &Org,
    clients: usize,
    each: usize,
    body: &[u8],
) -> (HashMap<u16, Vec<Answer>>, Vec<io::Error>) {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let mut client = KeepAlive::new(app);
            let key = org.key.clone();
            let body = body.to_vec();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..each {
                    got.push(
                        client
                            .post(&key, "/v3/objects/vehicle/batch/upsert", &body)
                            .await,
                    );
                }
                got
            })
        })
        .collect();
    let mut answers: HashMap<u16, Vec<Answer>> = HashMap::new();
    let mut errors = Vec::new();
    for task in tasks {
        for got in task.await.unwrap() {
            match got {
                Ok(a) => answers.entry(a.status).or_default().push(a),
                Err(e) => errors.push(e),
            }
        }
    }
    (answers, errors)
}

fn statuses(answers: &HashMap<u16, Vec<Answer>>) -> Vec<(u16, usize)> {
    let mut s: Vec<_> = answers.iter().map(|(k, v)| (*k, v.len())).collect();
    s.sort_unstable();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_into_a_rate_limit_gets_only_answers() {
    let app = spawn_app_with(0, |s| {
        s.limits = LimitSettings {
            writes_per_second: 1.0,
            writes_burst: 2.0,
            ..LimitSettings::UNLIMITED
        };
    })
    .await;
    let org = app.org_with_vehicles().await;
    let (answers, errors) = flood(&app, &org, 6, 6, &full_batch()).await;
    assert!(
        errors.is_empty(),
        "{errors:?} with {:?}",
        statuses(&answers)
    );
    assert_eq!(
        answers.keys().filter(|s| ![202, 429].contains(*s)).count(),
        0,
        "{:?}",
        statuses(&answers)
    );
    let refused = &answers[&429];
    assert!(refused.len() >= 30, "{:?}", statuses(&answers));
    // Refused before the body was read, yet the connection stayed open.
    assert!(
        refused.iter().all(|a| !a.closes()),
        "a 429 closed its connection"
    );
    assert!(refused.iter().all(|a| a.header("retry-after").is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_into_the_backlog_cap_gets_only_answers_and_the_cap_holds() {
    let app = spawn_app_with(0, |s| {
        s.limits = LimitSettings {
            max_open_processes: 3,
            ..LimitSettings::UNLIMITED
        };
    })
    .await;
    let org = app.org_with_vehicles().await;
    let (answers, errors) = flood(&app, &org, 6, 3, &full_batch()).await;
    assert!(
        errors.is_empty(),
        "{errors:?} with {:?}",
        statuses(&answers)
    );
    assert_eq!(statuses(&answers), vec![(202, 3), (429, 15)]);
    assert_eq!(app.process_count().await, 3);
    for refused in &answers[&429] {
        let message = String::from_utf8_lossy(&refused.body);
        assert!(message.contains("max_open_processes"), "{message}");
        assert_eq!(refused.header("x-sib-ratelimit-remaining"), Some(0));
    }
}

#[tokio::test]
async fn a_body_over_the_limit_gets_its_413_and_a_refused_one_its_429() {
    let app = spawn_app_with(0, |s| {
        s.limits = LimitSettings {
            writes_per_second: 0.001,
            writes_burst: 1.0,
            ..LimitSettings::UNLIMITED
        };
    })
    .await;
    let org = app.org_with_vehicles().await;
    let path = "/v3/objects/vehicle/batch/upsert";
    let mut client = KeepAlive::new(&app);
    let mut big = full_batch();
    big.resize(4 * MAX_BODY_BYTES, b' ');
    let answer = client.post(&org.key, path, &big).await.unwrap();
    assert_eq!(answer.status, 413);
    assert!(answer.closes(), "{:?}", answer.headers);
    let message = String::from_utf8_lossy(&answer.body);
    assert!(message.contains("payload_too_large"), "{message}");
    // The bucket is now empty: refused before the body is read, a body too
    // big to drain still gets its answer, then the connection closes.
    let answer = client.post(&org.key, path, &big).await.unwrap();
    assert_eq!(answer.status, 429);
    assert!(answer.closes(), "{:?}", answer.headers);
    let answer = client.post(&org.key, path, &full_batch()).await.unwrap();
    assert_eq!(answer.status, 429);
    assert!(!answer.closes(), "{:?}", answer.headers);

    // A client that waits for `100 Continue` (curl, for large bodies) gets
    // its 429 at once, without sending the body, and the connection closes.
    let mut stream = TcpStream::connect(("127.0.0.1", client.port))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\napi-key: {}\r\ncontent-type: application/json\r\n\
         content-length: 1000000\r\nexpect: 100-continue\r\n\r\n",
        org.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        read_answer(&mut stream, &mut Vec::new()),
    )
    .await
    .expect("no answer without the body")
    .unwrap();
    assert_eq!(answer.status, 429);
    assert!(answer.closes(), "{:?}", answer.headers);
}
