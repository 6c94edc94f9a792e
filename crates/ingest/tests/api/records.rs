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
