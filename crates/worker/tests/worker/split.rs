//! A plain upsert sharing a record with an older open batch writes its
//! other records beside it, in its transaction, and the shared one once the
//! older batch is final (`apply::split`); it gives that up and waits the
//! usual way when the older batch takes too long, and applies itself whole
//! when the shared record turns out new, so that ids follow request order.

use std::time::{Duration, Instant};

use deadpool_postgres::Transaction;
use objectsync_model::{Job, OrgId, ProcessId};
use objectsync_store::processes::{self, Counts};
use objectsync_testkit::{Org, TestApp, spawn_app_with};
use objectsync_worker::apply::{self, ApplyConfig, Handled};
use serde_json::{Value, json};

/// Accepts `records` (vehicles) with no worker running; returns the
/// process and its message, taken off the queue.
async fn accept(app: &TestApp, org: &Org, records: Value) -> (i64, Vec<u8>) {
    let id = app.upsert_accepted(org, "vehicle", records).await;
    let mut taken = app.take_batches().await;
    assert_eq!(taken.len(), 1);
    (id, taken.remove(0).0)
}

/// Applies process `id`'s message with the worker's apply function.
async fn apply(app: &TestApp, org: &Org, id: i64, body: &[u8]) -> Handled {
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
    let engine = objectsync_store::Engine::detect(&app.pool.get().await.unwrap())
        .await
        .unwrap();
    let config = ApplyConfig {
        max_links_per_type: 10,
        order_wait: Duration::from_secs(10),
        express: false,
        engine,
    };
    apply::handle(&app.pool, &apply::Local::new(4), &meta, &job, 1, config)
        .await
        .unwrap()
}

/// Waits until `n` sessions of the test's database are in a transaction
/// that has written something.
async fn until_writing(app: &TestApp, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let client = app.pool.get().await.unwrap();
    loop {
        let writing: i64 = client
            .query_one(
                "select count(*) from pg_stat_activity
                  where datname = current_database() and backend_xid is not null
                    and state = 'idle in transaction'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if writing >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{writing} of {n} transactions writing"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The older batch, applied by hand in `tx` the way a worker does: its
/// process row locked, then vehicle `k` named `name` (if given).
async fn write_older(tx: &Transaction<'_>, org: &Org, older: i64, name: Option<&str>) {
    processes::lock(tx, OrgId(org.id), ProcessId(older))
        .await
        .unwrap()
        .unwrap();
    if let Some(name) = name {
        tx.execute(
            "update records set attributes = attributes || jsonb_build_object('name', $2::text)
              where org_id = $1 and ext_id = 'k'",
            &[&org.id, &name],
        )
        .await
        .unwrap();
    }
}

/// Completes the older batch of [`write_older`] with `counts` and commits.
async fn finish_older(tx: Transaction<'_>, org: &Org, older: i64, counts: Counts) {
    processes::complete(&tx, OrgId(org.id), ProcessId(older), &counts, 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn counts(created: i32, updated: i32, failed: i32) -> Counts {
    Counts {
        processed: created + updated + failed,
        created,
        updated,
        failed,
        ..Default::default()
    }
}

fn applied(handled: Handled) -> Counts {
    match handled {
        Handled::Applied(c) => c,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_writes_its_own_records_beside_the_older_one_and_the_shared_after_it() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let (first, body) = accept(&app, &org, json!([{"identifiers": {"ext_id": "k"}}])).await;
    applied(apply(&app, &org, first, &body).await);
    let (older, _) = accept(
        &app,
        &org,
        json!([{"identifiers": {"ext_id": "k"}, "attributes": {"name": "older"}}]),
    )
    .await;
    let (newer, body) = accept(
        &app,
        &org,
        json!([
            {"identifiers": {"ext_id": "k"}, "attributes": {"name": "newer", "price": 1}},
            {"identifiers": {"ext_id": "n"}, "attributes": {"price": "not a number"}},
            {"identifiers": {"ext_id": "m"}, "attributes": {"name": "mine"}}
        ]),
    )
    .await;

    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    write_older(&tx, &org, older, Some("older")).await;
    let older_ends = async {
        // The newer batch has written its own records in its transaction:
        // it started before the older one ended.
        until_writing(&app, 2).await;
        let k = app.records_by_ext_id(&org, "vehicle").await;
        assert!(!k.contains_key("m"), "not committed before the older one");
        finish_older(tx, &org, older, counts(0, 1, 0)).await;
    };
    let (handled, ()) = tokio::join!(apply(&app, &org, newer, &body), older_ends);
    assert_eq!(applied(handled), counts(1, 1, 1));
    let records = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(records["k"]["attributes"]["name"], "newer");
    assert_eq!(records["k"]["attributes"]["price"], 1);
    assert_eq!(records["m"]["attributes"]["name"], "mine");
    // The rejection carries its index in the whole request.
    let errors = app.process_errors(&org, newer).await;
    assert_eq!(errors["count"], 1, "{errors}");
    assert_eq!(errors["errors"][0]["index"], 1, "{errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_older_one_takes_too_long_rolls_back_and_waits_the_usual_way() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let (first, body) = accept(&app, &org, json!([{"identifiers": {"ext_id": "k"}}])).await;
    applied(apply(&app, &org, first, &body).await);
    let (older, _) = accept(&app, &org, json!([{"identifiers": {"ext_id": "k"}}])).await;
    let (newer, body) = accept(
        &app,
        &org,
        json!([
            {"identifiers": {"ext_id": "k"}, "attributes": {"name": "newer"}},
            {"identifiers": {"ext_id": "m"}}
        ]),
    )
    .await;

    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    write_older(&tx, &org, older, Some("older")).await;
    let older_ends = async {
        until_writing(&app, 2).await;
        // Past the newer batch's patience: it rolls back its own records ...
        until_writing_only(&app, 1, Duration::from_secs(5)).await;
        assert!(
            !app.records_by_ext_id(&org, "vehicle")
                .await
                .contains_key("m")
        );
        finish_older(tx, &org, older, counts(0, 1, 0)).await;
    };
    // ... and applies once the older one is final, in order.
    let (handled, ()) = tokio::join!(apply(&app, &org, newer, &body), older_ends);
    assert_eq!(applied(handled), counts(1, 1, 0));
    let records = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(records["k"]["attributes"]["name"], "newer");
    assert!(records.contains_key("m"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_record_that_turns_out_new_gets_its_id_in_request_order() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    // The older batch names `k` but rejects it: `k` does not exist after.
    let (older, _) = accept(
        &app,
        &org,
        json!([{"identifiers": {"ext_id": "k"}, "attributes": {"price": "no"}}]),
    )
    .await;
    let (newer, body) = accept(
        &app,
        &org,
        json!([
            {"identifiers": {"ext_id": "k"}, "attributes": {"name": "first in the request"}},
            {"identifiers": {"ext_id": "m"}, "attributes": {"name": "second"}}
        ]),
    )
    .await;

    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    write_older(&tx, &org, older, None).await;
    let older_ends = async {
        until_writing(&app, 2).await;
        finish_older(tx, &org, older, counts(0, 0, 1)).await;
    };
    let (handled, ()) = tokio::join!(apply(&app, &org, newer, &body), older_ends);
    assert_eq!(applied(handled), counts(2, 0, 0));
    let records = app.records_by_ext_id(&org, "vehicle").await;
    let id = |ext: &str| records[ext]["identifiers"]["id"].as_i64().unwrap();
    assert!(id("k") < id("m"), "ids in request order: {records:?}");
}

/// Waits (`within` at most) until only `n` sessions are in a transaction
/// that has written something.
async fn until_writing_only(app: &TestApp, n: i64, within: Duration) {
    let deadline = Instant::now() + within;
    let client = app.pool.get().await.unwrap();
    loop {
        let writing: i64 = client
            .query_one(
                "select count(*) from pg_stat_activity
                  where datname = current_database() and backend_xid is not null
                    and state in ('idle in transaction', 'active')
                    and pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if writing <= n {
            return;
        }
        assert!(Instant::now() < deadline, "{writing} transactions writing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
