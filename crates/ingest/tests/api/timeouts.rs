//! Database waits are bounded: a request whose statement cannot finish in
//! `database.statement_timeout_ms` answers 503, saying so, instead of
//! hanging, and leaves nothing behind.

use std::time::Duration;

use objectsync_testkit::spawn_app_with;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_outlasts_its_statement_timeout_answers_503() {
    // With both timeouts equal the statement's, started first, fires first.
    let app = spawn_app_with(0, |s| {
        s.database.statement_timeout_ms = 500;
        s.database.lock_timeout_ms = 500;
    })
    .await;
    let org = app.org_with_vehicles().await;
    let batch = json!({"records": [{"identifiers": {"ext_id": "v1"}}]});

    // Another session keeps every new process row waiting.
    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("lock table processes in share mode")
        .await
        .unwrap();
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        app.upsert(&org.key, "vehicle", &batch),
    )
    .await
    .expect("the request hangs instead of timing out");
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "service_unavailable", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("did not answer in time"), "{message}");
    assert_eq!(app.process_count().await, 0);
    assert_eq!(app.batch_depth().await, 0, "nothing queued");

    // Once the lock is gone the same request goes through.
    tx.rollback().await.unwrap();
    let resp = app.upsert(&org.key, "vehicle", &batch).await;
    assert_eq!(resp.status(), 202);
}
