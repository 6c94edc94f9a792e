//! `GET /v3/processes`, `/v3/processes/{id}` and `/errors` (SPEC §4.2).

use objectsync_testkit::{spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organizations_process_is_a_404() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let other = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(&org, "vehicle", json!([{"identifiers": {"ext_id": "v1"}}]))
        .await;
    for path in [
        format!("/v3/processes/{id}"),
        format!("/v3/processes/{id}/errors"),
    ] {
        let resp = app.get(&other.key, &path).await;
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["code"],
            "document_not_found"
        );
    }
    let list: Value = app
        .get(&other.key, "/v3/processes")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 0);
    let resp = app.get(&org.key, "/v3/processes/999999").await;
    assert_eq!(resp.status(), 404);
    let resp = app.get(&org.key, "/v3/processes/abc").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "invalid_parameter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_and_sorts_by_creation() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            app.upsert_accepted(
                &org,
                "vehicle",
                json!([{"identifiers": {"ext_id": format!("v{i}")}}]),
            )
            .await,
        );
    }
    let page = |q: &'static str| {
        let app = &app;
        let key = org.key.clone();
        async move {
            let resp = app.get(&key, &format!("/v3/processes{q}")).await;
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let listed = |v: &Value| -> Vec<i64> {
        v["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    let (s, v) = page("").await;
    assert_eq!(s, 200);
    assert_eq!(v["count"], 12);
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    assert_eq!(listed(&v), newest_first[..10]);
    let (_, v) = page("?sort=asc&limit=5&offset=10").await;
    assert_eq!(listed(&v), ids[10..]);
    assert_eq!(v["processes"][0]["status"], "queued");
    assert_eq!(v["processes"][0]["info"]["records"]["total"], 1);

    let (s, v) = page("?limit=51").await;
    assert_eq!((s, v["code"].as_str().unwrap()), (400, "out_of_range"));
    for q in ["?limit=abc", "?limit=0", "?offset=-1", "?sort=sideways"] {
        let (s, v) = page(q).await;
        assert_eq!(
            (s, v["code"].as_str().unwrap()),
            (400, "invalid_parameter"),
            "{q}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_listed_in_record_order_and_paged() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let records: Vec<Value> = (0..30)
        .map(|i| {
            let price = if i % 3 == 0 { json!("bad") } else { json!(i) };
            json!({"identifiers": {"ext_id": format!("v{i}")}, "attributes": {"price": price}})
        })
        .collect();
    let id = app.upsert_accepted(&org, "vehicle", json!(records)).await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["info"]["records"]["failed"], 10);
    assert!(
        p["info"].get("error").is_none(),
        "no process-level error: {p}"
    );
    let resp = app
        .get(
            &org.key,
            &format!("/v3/processes/{id}/errors?limit=4&offset=2"),
        )
        .await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["count"], 10);
    let indexes: Vec<i64> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, vec![6, 9, 12, 15]);
    let all: Value = app
        .get(&org.key, &format!("/v3/processes/{id}/errors"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["errors"].as_array().unwrap().len(), 10);
    let resp = app
        .get(&org.key, &format!("/v3/processes/{id}/errors?limit=1001"))
        .await;
    assert_eq!(resp.status(), 400);
}
