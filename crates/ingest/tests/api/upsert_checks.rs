//! Every request-level check of SPEC §4.1: the status, the code, and that no
//! process was created.

use objectsync_testkit::{TestApp, spawn_app_with};
use serde_json::{Value, json};

async fn app() -> TestApp {
    // No worker: nothing here should ever reach one.
    spawn_app_with(0, |_| {}).await
}

async fn refused(app: &TestApp, key: &str, object_type: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = app
        .post_bytes(
            key,
            &format!("/v3/objects/{object_type}/batch/upsert"),
            body,
        )
        .await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("error bodies are JSON");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        app.process_count().await,
        0,
        "a refused batch must create no process"
    );
    (status, body)
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_size_shape_and_count() {
    let app = app().await;
    let org = app.org_with_vehicles().await;

    // Just over 1 MiB of otherwise valid JSON.
    let pad = "x".repeat(1_048_576);
    let big = json!({"records": [{"attributes": {"name": pad}}]}).to_string();
    let (s, b) = refused(&app, &org.key, "vehicle", big.into_bytes()).await;
    assert_eq!((s, code(&b)), (413, "payload_too_large"));

    for body in [
        "{not json",
        "[]",
        "{}",
        r#"{"records": {}}"#,
        r#"{"records": "x"}"#,
    ] {
        let (s, b) = refused(&app, &org.key, "vehicle", body.into()).await;
        assert_eq!((s, code(&b)), (400, "bad_request"), "{body}");
    }

    let (s, b) = refused(&app, &org.key, "vehicle", br#"{"records": []}"#.to_vec()).await;
    assert_eq!((s, code(&b)), (400, "out_of_range"));
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"identifiers": {"ext_id": format!("v{i}")}}))
        .collect();
    let (s, b) = refused(
        &app,
        &org.key,
        "vehicle",
        json!({"records": many}).to_string().into(),
    )
    .await;
    assert_eq!((s, code(&b)), (400, "out_of_range"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_record_limits_name_the_record() {
    let app = app().await;
    let org = app.org_with_vehicles().await;
    let attrs: serde_json::Map<String, Value> =
        (0..501).map(|i| (format!("a{i}"), json!(1))).collect();
    let targets: Vec<Value> = (1..=11)
        .map(|i| json!({"identifiers": {"id": i}}))
        .collect();
    let entries: Vec<Value> = (0..21)
        .map(|_| json!({"object_type": "garage", "records": []}))
        .collect();
    for (i, record) in [
        json!({"attributes": attrs}),
        json!({"associations": [{"object_type": "garage", "records": targets}]}),
        json!({"associations": entries}),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"records": [{}, {}, record]}).to_string();
        let (s, b) = refused(&app, &org.key, "vehicle", body.into()).await;
        assert_eq!((s, code(&b)), (400, "out_of_range"), "case {i}: {b}");
        assert!(b["message"].as_str().unwrap().contains("records[2]"), "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_must_be_well_formed() {
    let app = app().await;
    let org = app.org_with_vehicles().await;
    for ids in [
        json!({"id": 0}),
        json!({"id": -1}),
        json!({"id": "7"}),
        json!({"id": 1.5}),
        json!({"ext_id": ""}),
        json!({"ext_id": 42}),
        json!({"ext_id": "x".repeat(256)}),
    ] {
        let body = json!({"records": [{"identifiers": {"ext_id": "ok"}}, {"identifiers": ids}]});
        let (s, b) = refused(&app, &org.key, "vehicle", body.to_string().into()).await;
        assert_eq!((s, code(&b)), (400, "invalid_parameter"), "{ids}: {b}");
        assert!(b["message"].as_str().unwrap().contains("records[1]"), "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_type_must_be_well_formed_and_exist() {
    let app = app().await;
    let org = app.org_with_vehicles().await;
    let body = json!({"records": [{"identifiers": {"ext_id": "v1"}}]}).to_string();
    for bad in ["Vehicle", "1car", "car-2", &"x".repeat(33)] {
        let (s, b) = refused(&app, &org.key, bad, body.clone().into()).await;
        assert_eq!((s, code(&b)), (400, "invalid_parameter"), "{bad}");
    }
    let (s, b) = refused(&app, &org.key, "garage", body.clone().into()).await;
    assert_eq!(s, 404);
    assert_eq!(
        b,
        json!({"code": "document_not_found", "message": "invalid object type"})
    );

    // Another organization's type does not exist for this one.
    let other = app.create_org(true).await;
    let (s, _) = refused(&app, &other.key, "vehicle", body.into()).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_batch_is_queued_even_without_workers() {
    let app = app().await;
    let org = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(&org, "vehicle", json!([{"identifiers": {"ext_id": "v1"}}]))
        .await;
    let p = app.process(&org, id).await;
    assert_eq!(p["status"], "queued");
    assert_eq!(p["started_at"], Value::Null);
    assert_eq!(app.batch_depth().await, 1);
}
