//! The stale-process monitor: a process whose message is gone is reported,
//! then failed, instead of staying open forever.

use std::time::{Duration, Instant};

use objectsync_testkit::{ADMIN_TOKEN, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_message_is_lost_is_reported_then_failed() {
    let mut app = spawn_app_with(0, |s| {
        s.worker.stale_after_secs = 1;
        s.worker.fail_stale_after_secs = 4;
    })
    .await;
    let org = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "lost"}}]),
        )
        .await;
    // The message is lost (taken off the queue by hand).
    assert_eq!(app.take_batches().await.len(), 1);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let listed: Value = app
        .client
        .get(app.url("/admin/processes/stale?older_than=1"))
        .header("admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["id"], id, "{listed}");
    assert_eq!(listed[0]["status"], "queued");

    app.start_worker().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let p = loop {
        let p = app.process(&org, id).await;
        if p["status"] == "failed" {
            break p;
        }
        assert!(Instant::now() < deadline, "still {p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let error = p["info"]["error"].as_str().unwrap();
    assert!(error.contains("send the batch again"), "{error}");
    let client = app.pool.get().await.unwrap();
    let reported: bool = client
        .query_one(
            "select stale_at is not null from processes where id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(reported, "reported as stale before it was failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_process_is_not_stale() {
    let app = spawn_app_with(1, |s| {
        s.worker.stale_after_secs = 1;
        s.worker.fail_stale_after_secs = 2;
    })
    .await;
    let org = app.org_with_vehicles().await;
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "fine"}}]),
        )
        .await;
    assert_eq!(p["status"], "completed");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        app.process(&org, p["id"].as_i64().unwrap()).await["status"],
        "completed"
    );
}
