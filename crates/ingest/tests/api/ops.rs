//! Health endpoints, and what a producer sees while the broker is away.

use objectsync_testkit::{spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
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
        s.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
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
    assert_eq!(resp.json::<Value>().await.unwrap()["broker"], "down");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_names_every_public_route() {
    let app = spawn_app_with(0, |_| {}).await;
    let resp = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
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
}
