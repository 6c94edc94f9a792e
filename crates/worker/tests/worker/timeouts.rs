//! Database waits are bounded: a lock held by another session delays a
//! batch, never wedges the worker, and a batch waiting for its turn holds
//! no connection the others need.

use std::time::{Duration, Instant};

use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::json;

/// Polls `check` every 20 ms until it holds (30 s at most).
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two organizations with vehicles.
async fn two_orgs(app: &TestApp) -> (Org, Org) {
    (app.org_with_vehicles().await, app.org_with_vehicles().await)
}

/// Sessions of the test database waiting for a lock right now.
async fn waiting_for_locks(app: &TestApp) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one(
            "select count(*) from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Takes `org`'s ordering lock in shared mode in `tx`, as a request that
/// drew a process id and has not committed yet holds it (the advisory lock
/// (class "osor", organization id) of `objectsync_store::order`).
async fn hold_ordering_lock(tx: &deadpool_postgres::Transaction<'_>, org: &Org) {
    tx.execute(
        "select pg_advisory_xact_lock_shared($1, $2)",
        &[&0x6f73_6f72_i32, &i32::try_from(org.id).unwrap()],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_row_delays_its_batch_and_other_organizations_go_on() {
    // One connection: a batch stuck on the lock would keep every other
    // out. (Two deliveries at once: both organizations' batches go to the
    // express queue, where the delayed one holds a delivery of its own.)
    let app = spawn_app_with(1, |s| {
        s.database.pool_size = 1;
        s.worker.prefetch = 2;
        s.worker.retry_budget_ms = 20_000;
        s.database.apply_lock_timeout_ms = 200;
        s.database.apply_statement_timeout_ms = 5_000;
    })
    .await;
    let (a, b) = two_orgs(&app).await;
    let row = json!([{"identifiers": {"ext_id": "held"}, "attributes": {"name": "before"}}]);
    let done = app.upsert_and_wait(&a, "vehicle", row).await;
    assert_eq!(done["status"], "completed", "{done}");

    // Another session locks the record the next batch updates.
    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let locked = tx
        .execute(
            "select id from records where org_id = $1 and ext_id = 'held' for update",
            &[&a.id],
        )
        .await
        .unwrap();
    assert_eq!(locked, 1);
    let row = json!([{"identifiers": {"ext_id": "held"}, "attributes": {"name": "after"}}]);
    let delayed = app.upsert_accepted(&a, "vehicle", row).await;
    until("the batch never waited for the row lock", async || {
        waiting_for_locks(&app).await > 0
    })
    .await;

    // Meanwhile another organization's batches are applied.
    for i in 0..3 {
        let other = json!([{"identifiers": {"ext_id": format!("b{i}")}}]);
        let p = app.upsert_and_wait(&b, "vehicle", other).await;
        assert_eq!(p["status"], "completed", "{p}");
    }
    let p = app.process(&a, delayed).await;
    assert_eq!(p["status"], "in_process", "delayed, not ended: {p}");

    tx.rollback().await.unwrap();
    let p = app.wait_for_process(&a, delayed).await;
    assert_eq!(p["status"], "completed", "{p}");
    let records = app.records_by_ext_id(&a, "vehicle").await;
    assert_eq!(records["held"]["attributes"]["name"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waiting_for_its_turn_holds_no_connection() {
    // A pool of one: a waiting batch that kept its connection would leave
    // none for the others.
    let mut app = spawn_app_with(0, |s| s.database.pool_size = 1).await;
    let (a, b) = two_orgs(&app).await;

    // A request of `a` that drew a process id and has not committed yet
    // holds `a`'s ordering lock (see `objectsync_store::order`): `a`'s next
    // batch waits until it is gone.
    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    hold_ordering_lock(&tx, &a).await;
    let waiting = app
        .upsert_accepted(&a, "vehicle", json!([{"identifiers": {"ext_id": "a"}}]))
        .await;
    // The worker starts once the batch's process is committed: a delivery
    // that came before the commit would wait for `a`'s requests in flight
    // (the held lock among them) before it could even mark the batch
    // started, and this test is about the wait after that.
    app.start_worker().await;
    until("the batch never started", async || {
        app.process(&a, waiting).await["status"] == "in_process"
    })
    .await;

    for i in 0..3 {
        let other = json!([{"identifiers": {"ext_id": format!("b{i}")}}]);
        let p = app.upsert_and_wait(&b, "vehicle", other).await;
        assert_eq!(p["status"], "completed", "{p}");
    }
    let p = app.process(&a, waiting).await;
    assert_eq!(p["status"], "in_process", "it waits for the request: {p}");

    tx.commit().await.unwrap();
    let p = app.wait_for_process(&a, waiting).await;
    assert_eq!(p["status"], "completed", "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_ordering_lock_in_another_database_is_not_waited_for() {
    let app = spawn_app_with(1, |_| {}).await;
    let org = app.org_with_vehicles().await;
    // Another deployment on the same server, whose organization has the
    // same id, is accepting a batch.
    let other = objectsync_testkit::Sandbox::create("test").await;
    let mut client = other.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    hold_ordering_lock(&tx, &org).await;
    let p = app
        .upsert_and_wait(&org, "vehicle", json!([{"identifiers": {"ext_id": "v"}}]))
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    tx.rollback().await.unwrap();
}
