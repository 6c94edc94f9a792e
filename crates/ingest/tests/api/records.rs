//! `GET /v3/objects/{object_type}/records` (SPEC §4.3).

use objectsync_testkit::spawn_app;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_sorted_by_id() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let records: Vec<Value> = (0..25)
        .map(|i| json!({"identifiers": {"ext_id": format!("v{i}")}, "attributes": {"price": i}}))
        .collect();
    app.upsert_and_wait(&org, "vehicle", json!(records)).await;
    let get = |q: String| {
        let app = &app;
        let key = org.key.clone();
        async move {
            let resp = app
                .get(&key, &format!("/v3/objects/vehicle/records{q}"))
                .await;
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let ids = |v: &Value| -> Vec<i64> {
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["identifiers"]["id"].as_i64().unwrap())
            .collect()
    };
    let (s, first) = get("?limit=10&page_num=1".into()).await;
    assert_eq!(s, 200);
    assert_eq!(first["count"], 25);
    let first_ids = ids(&first);
    assert_eq!(first_ids.len(), 10);
    assert!(
        first_ids.windows(2).all(|w| w[0] > w[1]),
        "default sort is id desc"
    );
    let (_, third) = get("?limit=10&page_num=3".into()).await;
    assert_eq!(ids(&third).len(), 5);
    let (_, asc) = get("?limit=5&page_num=1&sort=asc".into()).await;
    let asc_ids = ids(&asc);
    assert!(asc_ids.windows(2).all(|w| w[0] < w[1]));
    let r = &asc["records"][0];
    assert_eq!(r["identifiers"]["ext_id"], "v0");
    assert_eq!(r["attributes"], json!({"price": 0}));
    assert!(r["createdAt"].is_string() && r["updatedAt"].is_string());
    assert!(r.get("associations").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_and_unknown_types() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    for (q, code) in [
        ("", "missing_parameter"),
        ("?limit=10", "missing_parameter"),
        ("?page_num=1", "missing_parameter"),
        ("?limit=0&page_num=1", "invalid_parameter"),
        ("?limit=1001&page_num=1", "out_of_range"),
        ("?limit=10&page_num=0", "invalid_parameter"),
        ("?limit=x&page_num=1", "invalid_parameter"),
        ("?limit=10&page_num=1&sort=up", "invalid_parameter"),
        (
            "?limit=10&page_num=1&association=maybe",
            "invalid_parameter",
        ),
    ] {
        let resp = app
            .get(&org.key, &format!("/v3/objects/vehicle/records{q}"))
            .await;
        assert_eq!(resp.status(), 400, "{q}");
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], code, "{q}");
    }
    let resp = app
        .get(&org.key, "/v3/objects/garage/records?limit=10&page_num=1")
        .await;
    assert_eq!(resp.status(), 404);
    let resp = app
        .get(&org.key, "/v3/objects/Bad-Type/records?limit=10&page_num=1")
        .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_dropped_from_the_schema_are_not_shown() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    app.upsert_and_wait(
        &org,
        "vehicle",
        json!([{"identifiers": {"ext_id": "v1"}, "attributes": {"name": "Zoe", "price": 3}}]),
    )
    .await;
    app.define_type(
        &org,
        "vehicle",
        &json!({"label": "V", "attributes": [{"key": "name", "label": "Name", "type": "text"}]}),
    )
    .await;
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(stored["v1"]["attributes"], json!({"name": "Zoe"}));
}

/// The `count` is kept by triggers, not counted: it must stay equal to the
/// rows there are through creates, updates (no change), deletes (some of
/// records that do not exist), re-creates, batches applied side by side by
/// several workers, and a type of another organization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_stays_exact_through_creates_updates_and_deletes() {
    let app = objectsync_testkit::spawn_app_with(2, |s| s.worker.prefetch = 4).await;
    let org = app.org_with_vehicles().await;
    let other = app.org_with_vehicles().await;
    let batch = |from: usize, to: usize| -> Value {
        json!((from..to)
            .map(|i| json!({"identifiers": {"ext_id": format!("v{i}")}, "attributes": {"price": i}}))
            .collect::<Vec<_>>())
    };
    // Overlapping batches, accepted back to back, applied by two workers.
    let mut ids = Vec::new();
    for k in 0..8 {
        ids.push(
            app.upsert_accepted(&org, "vehicle", batch(k * 50, k * 50 + 100))
                .await,
        );
    }
    ids.push(app.upsert_accepted(&other, "vehicle", batch(0, 7)).await);
    for id in &ids[..8] {
        assert_eq!(app.wait_for_process(&org, *id).await["status"], "completed");
    }
    assert_eq!(
        app.wait_for_process(&other, ids[8]).await["status"],
        "completed"
    );
    let count = |key: String| {
        let app = &app;
        async move {
            let v: Value = app
                .get(&key, "/v3/objects/vehicle/records?limit=1&page_num=1")
                .await
                .json()
                .await
                .unwrap();
            v["count"].as_i64().unwrap()
        }
    };
    assert_eq!(count(org.key.clone()).await, 450);
    assert_eq!(count(other.key.clone()).await, 7);

    // Deletes by ext_id (some unknown) and by id, then re-creates.
    let del = app
        .post_bytes(
            &org.key,
            "/v3/objects/vehicle/batch/delete",
            json!({"identifiers": {"ext_ids": ["v0", "v1", "v2", "nope"]}})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(del.status(), 202);
    let del_id = del.json::<Value>().await.unwrap()["processId"]
        .as_i64()
        .unwrap();
    app.wait_for_process(&org, del_id).await;
    assert_eq!(count(org.key.clone()).await, 447);
    let again = app.upsert_and_wait(&org, "vehicle", batch(0, 10)).await;
    assert_eq!(again["info"]["records"]["created"], 3);
    assert_eq!(count(org.key.clone()).await, 450);

    let client = app.pool.get().await.unwrap();
    let rows: i64 = client
        .query_one("select count(*) from records where org_id = $1", &[&org.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 450);
}
