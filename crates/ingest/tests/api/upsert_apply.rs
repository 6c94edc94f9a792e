//! What the worker does with accepted batches (SPEC §4.1, background part).

use objectsync_testkit::spawn_app;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_from_queued_to_completed_and_lands() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "v1"}, "attributes": {"name": "Zoe", "price": 21000}},
                {"identifiers": {"ext_id": "v2"}, "attributes": {"name": "Model 3", "electric": true}},
                {"attributes": {"name": "anonymous"}}
            ]),
        )
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    assert_eq!(p["name"], "OBJECT_RECORDS_UPSERT");
    assert_eq!(p["object_type"], "vehicle");
    assert_eq!(
        p["info"]["records"],
        json!({"total": 3, "processed": 3, "created": 3, "updated": 0, "deleted": 0, "failed": 0})
    );
    assert!(p["started_at"].is_string() && p["completed_at"].is_string());
    let records = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(records.len(), 3);
    assert_eq!(
        records["v1"]["attributes"],
        json!({"name": "Zoe", "price": 21000})
    );
    assert!(records["v1"]["identifiers"]["id"].as_i64().unwrap() > 0);
    let anon: Vec<&Value> = records
        .values()
        .filter(|r| r["identifiers"]["ext_id"].is_null())
        .collect();
    assert_eq!(anon.len(), 1);
    assert!(anon[0]["identifiers"]["id"].as_i64().unwrap() > 0);
}
