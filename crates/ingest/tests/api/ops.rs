//! Health endpoints, and what a producer sees while the broker is away.

use std::time::{Duration, Instant};

use objectsync_testkit::{TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body: Value = resp.json().await.unwrap();
    // Information only, and racing the worker's start: checked below.
    let workers = body.as_object_mut().unwrap().remove("workers");
    assert!(workers.is_some(), "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "database": "up", "broker": "up"})
    );
    let resp = app
        .client
        .get(app.url("/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "document_not_found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_broker_batches_get_503_and_leave_no_process() {
    // Nothing listens on port 1: the broker is down for this ingest.
    let app = spawn_app_with(0, |s| {
        s.amqp.urls = vec!["amqp://guest:guest@127.0.0.1:1/%2f".into()];
    })
    .await;
    let org = app.org_with_vehicles().await;
    let resp = app
        .upsert(
            &org.key,
            "vehicle",
            &json!({"records": [{"identifiers": {"ext_id": "a"}}]}),
        )
        .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "service_unavailable"
    );
    assert_eq!(app.process_count().await, 0);
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["broker"], "down");
    // The broker cannot say how many workers consume.
    assert_eq!(body["workers"], json!({"consumers": null}));
}

/// Polls ingest's `/readyz` until it reports `n` workers consuming (or 20
/// seconds pass), asserting it stays 200 meanwhile; its last body.
async fn readyz_once_workers_are(app: &TestApp, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        if body["workers"]["consumers"].as_u64() == Some(n) || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_the_workers_the_broker_sees() {
    let mut app = spawn_app().await;
    // The worker subscribes once it has seen the schema.
    let body = readyz_once_workers_are(&app, 1).await;
    assert_eq!(body["workers"], json!({"consumers": 1}), "{body}");

    // A second worker is counted once, not once per batch queue it consumes.
    app.start_worker().await;
    let body = readyz_once_workers_are(&app, 2).await;
    assert_eq!(body["workers"], json!({"consumers": 2}), "{body}");

    // No worker: still ready (batches wait in the queues), and it says so.
    app.stop_workers().await;
    let body = readyz_once_workers_are(&app, 0).await;
    assert_eq!(body["workers"], json!({"consumers": 0}), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_batches_and_records() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    app.upsert_and_wait(&org, "vehicle", json!([{"identifiers": {"ext_id": "m1"}}]))
        .await;
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for needle in [
        "objectsync_http_requests_total{method=\"POST\",route=\"/v3/objects/{object_type}/batch/upsert\",status=\"202\"}",
        "objectsync_http_request_duration_seconds_bucket",
        "objectsync_batches_accepted_total{kind=\"OBJECT_RECORDS_UPSERT\"}",
        "objectsync_batches_total{outcome=\"applied\"}",
        "objectsync_records_total{outcome=\"created\"}",
        "objectsync_batch_apply_seconds_bucket",
        "objectsync_queue_lag_seconds_bucket",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

/// The served document names every public route, and is valid OpenAPI as
/// client generators read it: checked by `openapi-spec-validator` (Python;
/// `pip install openapi-spec-validator`), which resolves every `$ref` and
/// checks that operation ids are unique.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_is_valid_and_complete() {
    let app = spawn_app_with(0, |_| {}).await;
    let resp = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/v3/objects/{object_type}/batch/upsert", "post"),
        ("/v3/objects/{object_type}/batch/delete", "post"),
        ("/v3/objects/{object_type}/records", "get"),
        ("/v3/objects/{object_type}/associated-records", "get"),
        ("/v3/processes", "get"),
        ("/v3/processes/{processId}", "get"),
        ("/v3/processes/{processId}/errors", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKey"]["name"],
        "api-key"
    );

    let path =
        std::env::temp_dir().join(format!("objectsync-openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, &body).unwrap();
    let out = std::process::Command::new("openapi-spec-validator")
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    let out = out.expect(
        "the test needs openapi-spec-validator on PATH: pip install openapi-spec-validator",
    );
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the served document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ERROR in the log means something is wrong: a healthy start with
/// `RUST_LOG=info` (which replaces the default filter, so every library
/// logs what it has) logs none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_start_logs_no_error() {
    use std::io::{BufRead, BufReader};
    let app = spawn_app_with(0, |_| {}).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_objectsync-ingest"))
        .env("DATABASE_URL", app.settings.database.url.expose_secret())
        .env("AMQP_URL", app.settings.amqp.urls[0].expose_secret())
        .env("OBJECTSYNC__AMQP__PREFIX", &app.settings.amqp.prefix)
        .env("OBJECTSYNC__HTTP__PORT", "0")
        .env("OBJECTSYNC__LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let listening = line.contains("ingest listening");
            lines.push(line);
            if listening {
                break;
            }
        }
        lines
    });
    let lines = tokio::time::timeout(std::time::Duration::from_secs(60), lines)
        .await
        .expect("ingest did not start within 60 s")
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("ingest listening")),
        "ingest did not start:\n{}",
        lines.join("\n")
    );
    let errors: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(r#""level":"ERROR""#))
        .collect();
    assert!(
        errors.is_empty(),
        "a healthy start logged errors: {errors:#?}"
    );
}

/// Every session says whose it is in `pg_stat_activity`: the binary's name
/// (`database.application_name`) and the pool's kind; an
/// `application_name` in the URL wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_sessions_name_their_binary_and_pool() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let p = app
        .upsert_and_wait(&org, "vehicle", json!([{"identifiers": {"ext_id": "a"}}]))
        .await;
    assert_eq!(p["status"], "completed");
    let client = app.pool.get().await.unwrap();
    let names: Vec<String> = objectsync_testkit::column(
        &client,
        "select distinct application_name from pg_stat_activity
              where datname = current_database()",
        &[],
    )
    .await;
    let binary = &app.settings.database.application_name;
    for expected in [
        format!("{binary}/requests"),
        format!("{binary}/apply"),
        "objectsync-testkit/requests".to_owned(),
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }

    let mut settings = app.settings.database.clone();
    let url = settings.url.expose_secret().to_owned();
    let sep = if url.contains('?') { '&' } else { '?' };
    settings.url = format!("{url}{sep}application_name=mine").into();
    let own = objectsync_infra::db::pool(&settings).unwrap();
    let name: String = own
        .get()
        .await
        .unwrap()
        .query_one("select current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "mine");
}
