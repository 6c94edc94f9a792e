//! `Idempotency-Key` on upsert and delete (SPEC §4.1).

use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::Value;

async fn post(app: &TestApp, org: &Org, path: &str, key: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .header("api-key", &org.key)
        .body(body.to_owned());
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

const UPSERT: &str = "/v3/objects/vehicle/batch/upsert";
const DELETE: &str = "/v3/objects/vehicle/batch/delete";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_and_request_answer_the_same_process_and_queue_nothing() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let body = r#"{"records": [{"identifiers": {"ext_id": "a"}, "attributes": {"name": "A", "price": 1}}]}"#;
    let (s, first) = post(&app, &org, UPSERT, Some("k1"), body).await;
    assert_eq!(s, 202);
    // Same request, keys in another order and other whitespace.
    let same = r#"{ "records": [ { "attributes": { "price": 1, "name": "A" }, "identifiers": { "ext_id": "a" } } ] }"#;
    let (s, again) = post(&app, &org, UPSERT, Some("k1"), same).await;
    assert_eq!(s, 202);
    assert_eq!(again["processId"], first["processId"]);
    assert_eq!(app.process_count().await, 1);
    assert_eq!(app.batch_depth().await, 1);

    let other = r#"{"records": [{"identifiers": {"ext_id": "a"}, "attributes": {"price": 2}}]}"#;
    let (s, v) = post(&app, &org, UPSERT, Some("k1"), other).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (422, "unprocessable_entity")
    );
    // The same key on another endpoint is another request too.
    let (s, _) = post(
        &app,
        &org,
        DELETE,
        Some("k1"),
        r#"{"identifiers": {"ext_ids": ["a"]}}"#,
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(app.process_count().await, 1);

    // Without a key, or with another, a repeat is a new batch.
    let (_, no_key) = post(&app, &org, UPSERT, None, body).await;
    let (_, k2) = post(&app, &org, UPSERT, Some("k2"), body).await;
    assert_ne!(no_key["processId"], first["processId"]);
    assert_ne!(k2["processId"], first["processId"]);
    // Keys are per organization.
    let other_org = app.org_with_vehicles().await;
    let (s, theirs) = post(&app, &other_org, UPSERT, Some("k1"), body).await;
    assert_eq!(s, 202);
    assert_ne!(theirs["processId"], first["processId"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_requests_honour_the_key_and_keys_expire_after_a_day() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let body = r#"{"identifiers": {"ids": [1, 2]}}"#;
    let (s, first) = post(&app, &org, DELETE, Some("d1"), body).await;
    assert_eq!(s, 202);
    let (_, again) = post(&app, &org, DELETE, Some("d1"), body).await;
    assert_eq!(again["processId"], first["processId"]);

    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "update idempotency_keys set created_at = now() - interval '25 hours'",
            &[],
        )
        .await
        .unwrap();
    let (s, later) = post(&app, &org, DELETE, Some("d1"), body).await;
    assert_eq!(s, 202);
    assert_ne!(later["processId"], first["processId"]);
    let n = objectsync_store::idempotency::sweep(&client, 1000)
        .await
        .unwrap();
    assert_eq!(n, 0, "the key was renewed, not left expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_refused() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let body = r#"{"records": [{"identifiers": {"ext_id": "a"}}]}"#;
    for key in ["", &"k".repeat(256)] {
        let (s, v) = post(&app, &org, UPSERT, Some(key), body).await;
        assert_eq!((s, v["code"].as_str().unwrap()), (400, "invalid_parameter"));
    }
    assert_eq!(app.process_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_duplicates_get_one_process() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let body = r#"{"records": [{"identifiers": {"ext_id": "a"}}]}"#;
    let requests = (0..8).map(|_| post(&app, &org, UPSERT, Some("race"), body));
    let answers = futures_util::future::join_all(requests).await;
    let ids: std::collections::HashSet<i64> = answers
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, 202, "{v}");
            v["processId"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.process_count().await, 1);
    assert_eq!(app.batch_depth().await, 1);
}
