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
