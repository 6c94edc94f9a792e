//! Several workers on batches that touch the same records.

use objectsync_testkit::spawn_app_with;
use serde_json::{Map, Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_batches_never_fail_or_lose_an_update() {
    const BATCHES: usize = 16;
    const RECORDS: usize = 100;
    let app = spawn_app_with(2, |s| s.worker.prefetch = 4).await;
    let org = app.create_org(true).await;
    let mut attributes = vec![json!({"key": "name", "label": "Name", "type": "text"})];
    for k in 0..BATCHES {
        attributes.push(json!({"key": format!("a{k}"), "label": "A", "type": "number"}));
    }
    app.define_type(
        &org,
        "item",
        &json!({"label": "Items", "attributes": attributes}),
    )
    .await;
    // Batch k sets a{k} on every record, each batch in its own order, so
    // batches lock the same rows in different request orders.
    let mut ids = Vec::new();
    for k in 0..BATCHES {
        let mut order: Vec<usize> = (0..RECORDS).collect();
        order.rotate_left((k * 37) % RECORDS);
        if k % 2 == 1 {
            order.reverse();
        }
        let records: Vec<Value> = order
            .iter()
            .map(|i| json!({"identifiers": {"ext_id": format!("r{i}")}, "attributes": {format!("a{k}"): k}}))
            .collect();
        ids.push(app.upsert_accepted(&org, "item", json!(records)).await);
    }
    let mut created = 0;
    for id in ids {
        let p = app.wait_for_process(&org, id).await;
        assert_eq!(p["status"], "completed", "{p}");
        assert_eq!(p["info"]["records"]["failed"], 0);
        created += p["info"]["records"]["created"].as_i64().unwrap();
    }
    assert_eq!(
        created, RECORDS as i64,
        "each record is created exactly once"
    );
    let stored = app.records_by_ext_id(&org, "item").await;
    assert_eq!(stored.len(), RECORDS);
    let expected: Map<String, Value> = (0..BATCHES).map(|k| (format!("a{k}"), json!(k))).collect();
    for (ext, r) in stored {
        assert_eq!(r["attributes"], Value::Object(expected.clone()), "{ext}");
    }
}
