//! Completion events: every process that ends, completed or failed,
//! yields exactly one event on `{prefix}.events`, with the routing key and
//! body of the contract, published from the outbox.

use std::collections::HashMap;
use std::time::Duration;

use objectsync_store::events;
use objectsync_testkit::events::{Event, EventTap};
use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::{Value, json};

/// Checks `e` is the event of `process` (as `GET /v3/processes/{id}`
/// answers it) of `org`.
fn assert_event_of(e: &Event, org: &Org, process: &Value) {
    let status = process["status"].as_str().unwrap();
    assert_eq!(
        e.routing_key,
        format!("process.{status}.{}.vehicle", org.id),
        "{e:?}"
    );
    let kind = match process["name"].as_str().unwrap() {
        "OBJECT_RECORDS_UPSERT" => "upsert",
        _ => "delete",
    };
    assert_eq!(
        e.body,
        json!({
            "processId": process["id"], "orgId": org.id, "objectType": "vehicle",
            "kind": kind, "status": status, "info": process["info"],
            "createdAt": process["created_at"], "completedAt": process["completed_at"],
        })
    );
    assert_eq!(e.delivery_mode, Some(2), "persistent");
    assert_eq!(e.content_type.as_deref(), Some("application/json"));
    let id = e.message_id.as_deref().expect("a message id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

async fn outbox_len(app: &TestApp) -> i64 {
    events::backlog(&app.pool.get().await.unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ended_process_yields_exactly_one_event() {
    let mut app = spawn_app_with(1, |_| {}).await;
    let tap = EventTap::bind(&app.settings.amqp).await.unwrap();
    let org = app.org_with_vehicles().await;

    // Completed: an upsert (one record rejected) and a delete.
    let records = json!([
        {"identifiers": {"ext_id": "a"}, "attributes": {"name": "A", "price": 1}},
        {"identifiers": {"ext_id": "b"}, "attributes": {"price": "not a number"}},
    ]);
    let upsert = app.upsert_and_wait(&org, "vehicle", records).await;
    assert_eq!(upsert["status"], "completed");
    let resp = app
        .post_bytes(
            &org.key,
            "/v3/objects/vehicle/batch/delete",
            json!({"identifiers": {"ext_ids": ["a", "zz"]}})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    let delete = app
        .wait_for_process(&org, body["processId"].as_i64().unwrap())
        .await;
    assert_eq!(delete["status"], "completed");

    // Failed by an operator while no worker runs: its event waits in the
    // outbox until a worker's relay finds it.
    app.stop_workers().await;
    let queued = app
        .upsert_accepted(&org, "vehicle", json!([{"attributes": {"name": "C"}}]))
        .await;
    let resp = app
        .admin_post(
            &format!("/admin/organizations/{}/processes/{queued}/fail", org.id),
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(outbox_len(&app).await, 1, "written with the failure");
    app.start_worker().await;
    let failed = app.wait_for_process(&org, queued).await;
    assert_eq!(failed["status"], "failed");

    let got = tap.wait_for(3, Duration::from_secs(10)).await;
    // No copy turns up later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got = got;
    got.extend(tap.drain().await.unwrap());
    assert_eq!(got.len(), 3, "{got:?}");
    let by_process: HashMap<i64, &Event> = got
        .iter()
        .map(|e| (e.body["processId"].as_i64().unwrap(), e))
        .collect();
    for p in [&upsert, &delete, &failed] {
        let e = by_process[&p["id"].as_i64().unwrap()];
        // What a poll reads now, after the end, is what the event said.
        let now = app.process(&org, p["id"].as_i64().unwrap()).await;
        assert_event_of(e, &org, &now);
    }
    assert_eq!(
        by_process[&queued].body["info"]["error"],
        "failed by an operator: test"
    );
    assert_eq!(outbox_len(&app).await, 0, "published rows are removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failed_by_a_worker_yields_a_failed_event() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let tap = EventTap::bind(&app.settings.amqp).await.unwrap();
    let org = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(&org, "vehicle", json!([{"attributes": {"name": "A"}}]))
        .await;
    // The object type disappears between accept and apply: the worker
    // fails the process at once and dead-letters the batch.
    let client = app.pool.get().await.unwrap();
    client
        .execute("delete from object_types", &[])
        .await
        .unwrap();
    app.start_worker().await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["status"], "failed");
    let mut got = tap.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    got.extend(tap.drain().await.unwrap());
    assert_eq!(
        got.len(),
        1,
        "one event, though the tracker saw the batch too: {got:?}"
    );
    assert_event_of(&got[0], &org, &p);
}
