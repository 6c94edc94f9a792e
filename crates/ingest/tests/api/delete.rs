//! `POST /v3/objects/{object_type}/batch/delete` (SPEC §4.3).

use objectsync_testkit::{Org, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn delete(app: &TestApp, org: &Org, object_type: &str, body: &Value) -> (u16, Value) {
    let resp = app
        .post_bytes(
            &org.key,
            &format!("/v3/objects/{object_type}/batch/delete"),
            body.to_string().into_bytes(),
        )
        .await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_removes_records_and_their_links_and_reports_unknowns() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles_and_garages().await;
    app.upsert_and_wait(&org, "garage", json!([{"identifiers": {"ext_id": "g1"}}]))
        .await;
    let link = json!([{"object_type": "garage", "records": [{"identifiers": {"ext_id": "g1"}}]}]);
    app.upsert_and_wait(
        &org,
        "vehicle",
        json!([
            {"identifiers": {"ext_id": "v1"}, "associations": link},
            {"identifiers": {"ext_id": "v2"}, "associations": link},
            {"identifiers": {"ext_id": "v3"}}
        ]),
    )
    .await;
    let (s, body) = delete(
        &app,
        &org,
        "vehicle",
        &json!({"identifiers": {"ext_ids": ["v1", "nope", "v3", "v1"]}}),
    )
    .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["message"], "Batch object records are being processed");
    let id = body["processId"].as_i64().unwrap();
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["name"], "OBJECT_RECORDS_DELETE");
    assert_eq!(p["status"], "completed");
    assert_eq!(
        p["info"]["records"],
        json!({"total": 4, "processed": 4, "created": 0, "updated": 0, "deleted": 2, "failed": 2})
    );
    let errors = app.process_errors(&org, id).await;
    assert_eq!(errors["errors"][0]["index"], 1);
    assert_eq!(errors["errors"][0]["code"], "record_not_found");
    assert_eq!(
        errors["errors"][0]["identifiers"],
        json!({"ext_id": "nope"})
    );
    assert_eq!(errors["errors"][1]["index"], 3);
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(stored.keys().collect::<Vec<_>>(), vec!["v2"]);
    let v: Value = app
        .get(&org.key, "/v3/objects/garage/associated-records?ext_id=g1")
        .await
        .json()
        .await
        .unwrap();
    let left: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["object"]["ext_id"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec!["v2"], "no link dangles after a delete");

    // By id, and re-creating a deleted ext_id gives a new record without links.
    let v2 = stored["v2"]["identifiers"]["id"].as_i64().unwrap();
    let (s, body) = delete(
        &app,
        &org,
        "vehicle",
        &json!({"identifiers": {"ids": [v2]}}),
    )
    .await;
    assert_eq!(s, 202);
    let p = app
        .wait_for_process(&org, body["processId"].as_i64().unwrap())
        .await;
    assert_eq!(p["info"]["records"]["deleted"], 1);
    let p = app
        .upsert_and_wait(&org, "vehicle", json!([{"identifiers": {"ext_id": "v2"}}]))
        .await;
    assert_eq!(p["info"]["records"]["created"], 1);
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_ne!(stored["v2"]["identifiers"]["id"], v2);
    let v: Value = app
        .get(&org.key, "/v3/objects/vehicle/associated-records?ext_id=v2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_level_errors() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles_and_garages().await;
    let many: Vec<i64> = (1..=1001).collect();
    for (body, status, code) in [
        (
            json!({"identifiers": {"ids": [1], "ext_ids": ["a"]}}),
            400,
            "invalid_parameter",
        ),
        (json!({"identifiers": {"ids": many}}), 400, "out_of_range"),
        (json!({"identifiers": {"ids": []}}), 400, "out_of_range"),
        (
            json!({"identifiers": {"ids": [0]}}),
            400,
            "invalid_parameter",
        ),
        (
            json!({"identifiers": {"ext_ids": [""]}}),
            400,
            "invalid_parameter",
        ),
        (json!({}), 400, "missing_parameter"),
    ] {
        let (s, v) = delete(&app, &org, "vehicle", &body).await;
        assert_eq!((s, v["code"].as_str().unwrap()), (status, code), "{body}");
    }
    let (s, v) = delete(&app, &org, "unknown", &json!({"identifiers": {"ids": [1]}})).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (404, "document_not_found")
    );
    assert_eq!(app.process_count().await, 0);
}
