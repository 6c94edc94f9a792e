//! A batch that starts before the older batch on its records commits
//! (`gate::may_start_early`): its writes wait for the older one's row
//! locks, and it commits only once that one is final — or rolls back and
//! comes again when that one rolled back.

use std::time::{Duration, Instant};

use objectsync_model::{Job, OrgId, ProcessId};
use objectsync_store::{order, processes};
use objectsync_testkit::{TestApp, spawn_app_with};
use objectsync_worker::apply::{self, ApplyConfig, Handled};
use serde_json::json;

/// Accepts an update of vehicle `k` to `name` with no worker running, and
/// returns its process and its message, taken off the queue.
async fn accept(app: &TestApp, org: &objectsync_testkit::Org, name: &str) -> (i64, Vec<u8>) {
    let id = app
        .upsert_accepted(
            org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "k"}, "attributes": {"name": name}}]),
        )
        .await;
    let mut taken = app.take_batches().await;
    assert_eq!(taken.len(), 1);
    (id, taken.remove(0).0)
}

/// Applies process `id`'s message with the worker's apply function.
async fn apply(
    app: &TestApp,
    org: &objectsync_testkit::Org,
    id: i64,
    body: &[u8],
) -> Result<Handled, String> {
    let meta = objectsync_model::BatchMeta {
        org_id: OrgId(org.id),
        process_id: ProcessId(id),
        kind: objectsync_model::ProcessKind::Upsert,
        object_type: objectsync_model::ObjectTypeName::parse("vehicle").unwrap(),
        xact_id: 0,
        enqueued_at: chrono::Utc::now(),
        request_id: None,
    };
    let job = Job::decode(meta.kind, body).unwrap();
    let config = ApplyConfig {
        max_links_per_type: 10,
        order_wait: Duration::from_secs(10),
        express: false,
        engine: objectsync_store::Engine::Postgres,
    };
    apply::handle(&app.pool, &apply::Local::new(4), &meta, &job, 1, config)
        .await
        .map_err(|e| e.to_string())
}

/// Waits until a session of the test's database waits for a lock.
async fn until_one_waits_for_a_lock(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let client = app.pool.get().await.unwrap();
    loop {
        let n: i64 = client
            .query_one(
                "select count(*) from pg_stat_activity
                  where datname = current_database() and wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the newer batch never waited for a row lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn name_of_k(app: &TestApp, org: &objectsync_testkit::Org) -> serde_json::Value {
    app.records_by_ext_id(org, "vehicle").await["k"]["attributes"]["name"].clone()
}

/// The older batch, applied by hand in `tx` the way a worker does, up to
/// "records written": its process row locked, record `k` updated, the mark.
async fn write_older(tx: &deadpool_postgres::Transaction<'_>, org: i64, older: i64) {
    let (org, older) = (OrgId(org), ProcessId(older));
    processes::lock(tx, org, older).await.unwrap().unwrap();
    tx.execute(
        "update records set attributes = '{\"name\": \"older\"}' where org_id = $1 and ext_id = 'k'",
        &[&org],
    )
    .await
    .unwrap();
    order::mark_written(tx, older).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_batch_starts_once_the_older_has_written_and_commits_after_it() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let (first, body) = accept(&app, &org, "first").await;
    assert!(matches!(
        apply(&app, &org, first, &body).await,
        Ok(Handled::Applied(_))
    ));
    let (older, _) = accept(&app, &org, "older").await;
    let (newer, body) = accept(&app, &org, "newer").await;

    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    write_older(&tx, org.id, older).await;
    let finish_older = async {
        // The newer batch is in its transaction, its write waiting for the
        // older one's row lock: it started before the older one committed.
        until_one_waits_for_a_lock(&app).await;
        let counts = processes::Counts {
            processed: 1,
            updated: 1,
            ..Default::default()
        };
        processes::complete(&tx, OrgId(org.id), ProcessId(older), &counts, 1)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    };
    let (handled, ()) = tokio::join!(apply(&app, &org, newer, &body), finish_older);
    match handled {
        Ok(Handled::Applied(c)) => assert_eq!((c.updated, c.created), (1, 0)),
        other => panic!("{other:?}"),
    }
    assert_eq!(name_of_k(&app, &org).await, "newer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_batch_that_started_early_rolls_back_when_the_older_rolls_back() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let (first, body) = accept(&app, &org, "first").await;
    assert!(matches!(
        apply(&app, &org, first, &body).await,
        Ok(Handled::Applied(_))
    ));
    let (older, older_body) = accept(&app, &org, "older").await;
    let (newer, body) = accept(&app, &org, "newer").await;

    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    write_older(&tx, org.id, older).await;
    let crash_older = async {
        until_one_waits_for_a_lock(&app).await;
        tx.rollback().await.unwrap();
    };
    let (handled, ()) = tokio::join!(apply(&app, &org, newer, &body), crash_older);
    let error = handled.expect_err("the newer batch must not commit before the older one");
    assert!(error.contains("rolled back"), "{error}");
    assert_eq!(
        name_of_k(&app, &org).await,
        "first",
        "nothing of the newer batch stayed"
    );
    assert_eq!(app.process(&org, newer).await["status"], "in_process");

    // The older batch comes again, then the newer one: in order.
    assert!(matches!(
        apply(&app, &org, older, &older_body).await,
        Ok(Handled::Applied(_))
    ));
    assert!(matches!(
        apply(&app, &org, newer, &body).await,
        Ok(Handled::Applied(_))
    ));
    assert_eq!(name_of_k(&app, &org).await, "newer");
}
