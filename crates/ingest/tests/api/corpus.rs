//! The fixed corpus of hostile requests under `tests/corpus/`: every file is
//! one request and the answer it must get; none may be a 5xx, and every
//! accepted batch must end `completed` (bad records rejected one by one).
//!
//! A case file reads like an HTTP request:
//!
//! ```text
//! # an optional comment
//! POST /v3/objects/vehicle/batch/upsert
//! content-type: text/plain
//! expect: 415 unsupported_media_type
//!
//! <the body, verbatim, to the end of the file>
//! ```
//!
//! `expect:` is the status, then the error code, or for a `202` the status
//! the process must end in and `failed=N`, its rejected records. Requests get
//! the test organization's `api-key` (`api-key: none` sends none) and, with
//! a body, `content-type: application/json` (`content-type: none` sends
//! none); `/admin` requests get the admin token.

use std::path::PathBuf;

use objectsync_testkit::{ADMIN_TOKEN, Org, TestApp, spawn_app};
use serde_json::{Value, json};

struct Case {
    name: String,
    method: reqwest::Method,
    path: String,
    headers: Vec<(String, String)>,
    expect: Vec<String>,
    body: Vec<u8>,
}

fn parse(name: String, bytes: &[u8]) -> Case {
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or_else(|| panic!("{name}: no blank line after the headers"));
    let head = std::str::from_utf8(&bytes[..split]).expect("the head is UTF-8");
    let mut lines = head.lines().filter(|l| !l.starts_with('#'));
    let request = lines.next().expect("a request line");
    let (method, path) = request.split_once(' ').expect("METHOD PATH");
    let mut headers = Vec::new();
    let mut expect = Vec::new();
    for line in lines {
        let (k, v) = line.split_once(':').expect("name: value");
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
        if k == "expect" {
            expect = v.split_whitespace().map(str::to_owned).collect();
        } else {
            headers.push((k, v));
        }
    }
    assert!(!expect.is_empty(), "{name}: no expect line");
    Case {
        name,
        method: method.parse().expect("a method"),
        path: path.to_owned(),
        headers,
        expect,
        body: bytes[split + 2..].to_vec(),
    }
}

fn load() -> Vec<Case> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the corpus directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            parse(name, &std::fs::read(&p).expect("readable"))
        })
        .collect()
}

/// Sends `case`; returns what was wrong with the answer, if anything.
async fn check(app: &TestApp, org: &Org, case: &Case) -> Option<String> {
    let mut req = app.client.request(case.method.clone(), app.url(&case.path));
    let header = |name: &str| {
        case.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match header("api-key") {
        Some("none") => {}
        Some(key) => req = req.header("api-key", key),
        None => req = req.header("api-key", &org.key),
    }
    if case.path.starts_with("/admin") {
        req = req.header("admin-token", ADMIN_TOKEN);
    }
    if !case.body.is_empty() && header("content-type").is_none() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in &case.headers {
        if k != "api-key" && v != "none" {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    if !case.body.is_empty() {
        req = req.body(case.body.clone());
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("no answer: {e}")),
    };
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(json!({"unparsed": text}));
    if status >= 500 {
        return Some(format!("answered {status}: {body}"));
    }
    let want: u16 = case.expect[0].parse().expect("a status");
    if status != want {
        return Some(format!("answered {status}, expected {want}: {body}"));
    }
    if status >= 400 {
        let code = case.expect.get(1).map(String::as_str);
        if body["code"].as_str() != code {
            return Some(format!("answered code {}, expected {code:?}", body["code"]));
        }
        if body["message"].as_str().is_none_or(str::is_empty) {
            return Some(format!("no message: {body}"));
        }
        return None;
    }
    if status == 202 {
        let id = body["processId"].as_i64()?;
        let p = app.wait_for_process(org, id).await;
        if Some(p["status"].as_str().unwrap_or("")) != case.expect.get(1).map(String::as_str) {
            return Some(format!("process ended {}: {p}", p["status"]));
        }
        // The good record every upsert case starts with is never blamed:
        // only the hostile one is in /errors.
        let errors = app.process_errors(org, id).await;
        let rows = errors["errors"].as_array().cloned().unwrap_or_default();
        if rows.len() as i64 != p["info"]["records"]["failed"].as_i64().unwrap_or(-1)
            || rows
                .iter()
                .any(|e| e["index"] == 0 && case.path.ends_with("/upsert"))
        {
            return Some(format!("errors do not match the counts: {p} {errors}"));
        }
        for want in &case.expect[2..] {
            let (counter, n) = want.split_once('=').expect("counter=N");
            let got = &p["info"]["records"][counter];
            if got.as_i64() != n.parse().ok() {
                let errors = app.process_errors(org, id).await;
                return Some(format!("{counter} is {got}, expected {n}: {p} {errors}"));
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_its_answer_and_none_is_a_5xx() {
    let cases = load();
    assert!(cases.len() >= 100, "the corpus holds {} cases", cases.len());
    let app = spawn_app().await;
    let org = app.org_with_vehicles_and_garages().await;
    let seeded = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "v1"}, "attributes": {"name": "One"},
                 "associations": [{"object_type": "garage", "records": [{"identifiers": {"ext_id": "g1"}}]}]},
                {"identifiers": {"ext_id": "v2"}, "attributes": {"name": "Two"}}
            ]),
        )
        .await;
    assert_eq!(seeded["status"], "completed");
    let mut wrong = Vec::new();
    for case in &cases {
        if let Some(problem) = check(&app, &org, case).await {
            wrong.push(format!("{}: {problem}", case.name));
        }
    }
    let client = app.pool.get().await.expect("db");
    let good: i64 = client
        .query_one("select count(*) from records where ext_id = 'ok'", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(good, 1, "the good record of the accepted cases is stored");
    assert!(
        wrong.is_empty(),
        "{} of {} cases answered wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
