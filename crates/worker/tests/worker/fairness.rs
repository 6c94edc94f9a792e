//! Fairness between organizations: a quiet organization's batch is not
//! applied after another organization's whole backlog.

use objectsync_testkit::spawn_app_with;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_organizations_batch_overtakes_another_organizations_backlog() {
    const BACKLOG: usize = 120;
    let mut app = spawn_app_with(0, |_| {}).await;
    let busy = app.org_with_vehicles().await;
    let quiet = app.org_with_vehicles().await;
    let topology = app.topology();
    assert_ne!(
        topology.queue_for(busy.id),
        topology.queue_for(quiet.id),
        "the two organizations share a queue; the test needs them apart"
    );
    // The backlog is queued before any worker runs, then the quiet
    // organization's lone batch.
    for b in 0..BACKLOG {
        let records: Vec<Value> = (0..20)
            .map(|i| json!({"identifiers": {"ext_id": format!("b{b}-{i}")}}))
            .collect();
        app.upsert_accepted(&busy, "vehicle", json!(records)).await;
    }
    let lone = app
        .upsert_accepted(&quiet, "vehicle", json!([{"identifiers": {"ext_id": "q"}}]))
        .await;
    app.start_worker().await;
    let done = app.wait_for_process(&quiet, lone).await;
    assert_eq!(done["status"], "completed", "{done}");

    // Only the few batches the worker had already taken from the busy
    // queue were applied before it.
    let client = app.pool.get().await.unwrap();
    let before: i64 = client
        .query_one(
            "select count(*) from processes b, processes q
              where q.id = $1 and b.org_id = $2 and b.completed_at < q.completed_at",
            &[&lone, &busy.id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        before <= 10,
        "{before} of the busy organization's {BACKLOG} batches went first"
    );
}
