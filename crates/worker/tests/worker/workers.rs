//! The `workers` table: each running worker's row, with its prefetch and
//! the batches it is applying, gone when it stops.

use std::time::{Duration, Instant};

use objectsync_model::{OrgId, ProcessId};
use objectsync_store::workers::{self, LiveWorker};
use objectsync_testkit::{TestApp, spawn_app_with};
use serde_json::json;

/// Rows seen within three one-second heartbeats.
async fn live(app: &TestApp) -> Vec<LiveWorker> {
    let client = app.pool.get().await.unwrap();
    workers::live(&client, Duration::from_secs(3))
        .await
        .unwrap()
}

/// Polls the live workers until `done` holds for them (10 s at most).
async fn wait_until(
    app: &TestApp,
    what: &str,
    done: impl Fn(&[LiveWorker]) -> bool,
) -> Vec<LiveWorker> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = live(app).await;
        if done(&rows) {
            return rows;
        }
        assert!(Instant::now() < deadline, "{what}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn row_count(app: &TestApp) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one("select count(*) from workers", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_worker_has_a_row_that_goes_when_it_stops() {
    let mut app = spawn_app_with(1, |s| {
        s.worker.prefetch = 3;
        s.worker.heartbeat_secs = 1;
    })
    .await;
    let rows = wait_until(&app, "no worker row", |rows| rows.len() == 1).await;
    let w = &rows[0];
    assert_eq!(w.prefetch, 3);
    assert_eq!(w.pid, i32::try_from(std::process::id()).unwrap());
    assert!(!w.host.is_empty());
    assert!(w.applying.is_empty(), "{w:?}");
    assert!(w.seen_at >= w.started_at - chrono::Duration::seconds(5));
    // It keeps beating.
    let first_seen = w.seen_at;
    wait_until(&app, "no new heartbeat", |rows| {
        rows.len() == 1 && rows[0].seen_at > first_seen
    })
    .await;

    app.stop_workers().await;
    assert_eq!(row_count(&app).await, 0, "the row is deleted on stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_being_applied_shows_in_its_workers_row() {
    let app = spawn_app_with(1, |s| s.worker.heartbeat_secs = 1).await;
    let org = app.org_with_vehicles().await;
    // Hold the batch inside apply: its insert waits for this lock, taken
    // after its turn has come and it holds a slot.
    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("lock table records in share mode")
        .await
        .unwrap();
    let started = chrono::Utc::now();
    let id = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "held"}}]),
        )
        .await;
    let rows = wait_until(&app, "the batch is not shown", |rows| {
        rows.len() == 1 && !rows[0].applying.is_empty()
    })
    .await;
    let applying = rows[0].applying.clone();
    assert_eq!(applying.len(), 1, "{applying:?}");
    assert_eq!(applying[0].org_id, OrgId(org.id));
    assert_eq!(applying[0].process_id, ProcessId(id));
    assert!(applying[0].since >= started - chrono::Duration::seconds(5));
    assert_eq!(app.process(&org, id).await["status"], "in_process");

    tx.rollback().await.unwrap();
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["status"], "completed", "{p}");
    wait_until(&app, "the batch is still shown", |rows| {
        rows.len() == 1 && rows[0].applying.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_crashed_workers_are_not_live_and_are_swept_after_an_hour() {
    let mut app = spawn_app_with(0, |s| s.worker.heartbeat_secs = 1).await;
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute(
            "insert into workers (id, host, pid, prefetch, started_at, seen_at)
             values ('00000000-0000-0000-0000-000000000001', 'gone', 1, 4,
                     now() - interval '3 hours', now() - interval '2 hours'),
                    ('00000000-0000-0000-0000-000000000002', 'crashed', 2, 4,
                     now() - interval '1 hour', now() - interval '1 minute')",
        )
        .await
        .unwrap();
    assert!(live(&app).await.is_empty(), "neither was seen lately");
    app.start_worker().await;
    let rows = wait_until(&app, "no worker row", |rows| rows.len() == 1).await;
    assert_ne!(rows[0].host, "crashed");
    // The retention sweeper (RETENTION__WORKERS_SECS, an hour) runs as the
    // worker starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    let hosts = loop {
        let hosts: Vec<String> = objectsync_testkit::column(
            &client,
            "select host from workers order by started_at",
            &[],
        )
        .await;
        if !hosts.contains(&"gone".to_owned()) {
            break hosts;
        }
        assert!(Instant::now() < deadline, "not swept: {hosts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hosts[0], "crashed", "an hour has not passed: {hosts:?}");
    assert_eq!(hosts.len(), 2);
}
