//! Redelivery, poison messages, the retry cap and permanent failures.

use std::time::Duration;

use lapin::BasicProperties;
use objectsync_infra::message;
use objectsync_model::Job;
use objectsync_testkit::{TestApp, spawn_app_with};
use objectsync_worker::apply::{self, ApplyConfig, Handled};
use serde_json::{Value, json};

use crate::dead_letters::wait_for_dead_letters;

/// Takes the one message waiting in the batch queues.
async fn take_message(app: &TestApp) -> (Vec<u8>, BasicProperties) {
    let mut taken = app.take_batches().await;
    assert_eq!(taken.len(), 1, "one message is waiting");
    taken.remove(0)
}

/// What the tests that call the apply function directly apply with.
fn config(engine: objectsync_store::Engine) -> ApplyConfig {
    ApplyConfig {
        max_links_per_type: 10,
        order_wait: Duration::from_secs(5),
        express: false,
        engine,
    }
}

async fn db_value(app: &TestApp, sql: &str) -> i64 {
    let client = app.pool.get().await.unwrap();
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_delivered_twice_has_its_effect_once() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "a"}, "attributes": {"price": 1}},
                {"attributes": {"name": "anonymous"}},
                {"identifiers": {"ext_id": "b"}, "attributes": {"price": "bad"}}
            ]),
        )
        .await;
    let (message, props) = take_message(&app).await;
    app.publish_raw_with(&message, props.clone()).await;
    app.publish_raw_with(&message, props.clone()).await;
    app.start_worker().await;
    let p = app.wait_for_process(&org, id).await;
    // Give the second copy time to be consumed too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.batch_depth().await > 0 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        p["info"]["records"],
        json!({"total": 3, "processed": 3, "created": 2, "updated": 0, "deleted": 0, "failed": 1})
    );
    assert_eq!(app.process(&org, id).await["info"], p["info"]);
    assert_eq!(db_value(&app, "select count(*) from records").await, 2);
    assert_eq!(
        db_value(&app, "select count(*) from process_errors").await,
        1
    );
    assert_eq!(db_value(&app, "select count(*) from dead_letters").await, 0);

    // And straight through the apply function: the second call is a no-op.
    let meta = message::read_meta(&props).unwrap();
    let job = Job::decode(meta.kind, &message).unwrap();
    let engine = objectsync_store::Engine::detect(&app.pool.get().await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        apply::handle(
            &app.pool,
            &apply::Local::new(4),
            &meta,
            &job,
            3,
            config(engine)
        )
        .await
        .unwrap(),
        Handled::AlreadyDone
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_is_dead_lettered_and_does_not_block_the_queue() {
    let app = spawn_app_with(1, |_| {}).await;
    let org = app.org_with_vehicles().await;
    app.publish_raw(b"this is not an envelope").await;
    app.publish_raw(br#"{"v": 99, "process_id": 1}"#).await;
    let p = app
        .upsert_and_wait(&org, "vehicle", json!([{"identifiers": {"ext_id": "a"}}]))
        .await;
    assert_eq!(p["status"], "completed");
    wait_for_dead_letters(&app, 2).await;
    assert_eq!(app.batch_depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_keeps_failing_ends_failed_after_the_configured_deliveries() {
    let app = spawn_app_with(1, |s| {
        s.amqp.max_deliveries = 3;
        s.worker.retry_budget_ms = 100;
    })
    .await;
    let org = app.org_with_vehicles().await;
    // A fault that fires on every attempt: inserting ext_id 'boom' raises a
    // serialization failure, which the worker treats as transient.
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute(
            "create function fail_boom() returns trigger language plpgsql as $$
             begin
               if new.ext_id = 'boom' then
                 raise exception 'injected fault' using errcode = '40001';
               end if;
               return new;
             end $$;
             create trigger fail_boom before insert on records
               for each row execute function fail_boom();",
        )
        .await
        .unwrap();
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "ok"}}, {"identifiers": {"ext_id": "boom"}}]),
        )
        .await;
    assert_eq!(p["status"], "failed", "{p}");
    let error = p["info"]["error"].as_str().unwrap();
    assert!(
        error.contains("3 deliveries") && error.contains("injected fault"),
        "{error}"
    );
    assert!(p["completed_at"].is_string());
    let deliveries = db_value(&app, "select deliveries::int8 from processes").await;
    assert_eq!(deliveries, 3);
    assert_eq!(
        db_value(&app, "select count(*) from records").await,
        0,
        "records untouched"
    );
    wait_for_dead_letters(&app, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_fails_the_process_at_once() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(&org, "vehicle", json!([{"identifiers": {"ext_id": "a"}}]))
        .await;
    // The object type disappears between accept and apply.
    let client = app.pool.get().await.unwrap();
    client
        .execute("delete from object_types", &[])
        .await
        .unwrap();
    app.start_worker().await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["status"], "failed");
    let error: &Value = &p["info"]["error"];
    assert!(error.as_str().unwrap().contains("no longer exists"), "{p}");
    assert_eq!(
        db_value(&app, "select deliveries::int8 from processes").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_request_rolled_back_is_dropped() {
    let app = spawn_app_with(1, |_| {}).await;
    let org = app.org_with_vehicles().await;
    // A transaction that rolls back, as ingest's does when its commit fails
    // after the broker confirmed the message.
    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let xact: String = tx
        .query_one("select pg_current_xact_id()::text", &[])
        .await
        .unwrap()
        .get(0);
    tx.rollback().await.unwrap();
    let meta = objectsync_model::BatchMeta {
        org_id: objectsync_model::OrgId(org.id),
        process_id: objectsync_model::ProcessId(424_242),
        kind: objectsync_model::ProcessKind::Upsert,
        object_type: objectsync_model::ObjectTypeName::parse("vehicle").unwrap(),
        xact_id: xact.parse().unwrap(),
        enqueued_at: chrono::Utc::now(),
        request_id: None,
    };
    app.publish_raw_with(
        br#"{"records":[{"identifiers":{"ext_id":"ghost"}}]}"#,
        BasicProperties::default().with_headers(message::headers(&meta)),
    )
    .await;
    // A real batch after them goes through.
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "real"}}]),
        )
        .await;
    assert_eq!(p["status"], "completed");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.batch_depth().await > 0 {
        assert!(std::time::Instant::now() < deadline, "orphans not consumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        db_value(&app, "select count(*) from dead_letters").await,
        0,
        "orphans are not dead letters"
    );
    assert_eq!(db_value(&app, "select count(*) from records").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_arrives_before_its_request_commits_waits_for_it_without_a_retry() {
    // Ingest publishes before it commits the process row, and a worker
    // often has the message first: one call of the apply function waits for
    // the request's transaction and applies the batch, where it used to
    // fail with "not yet" and come again after a retry's pause.
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let body = br#"{"records":[{"identifiers":{"ext_id":"early"}}]}"#;
    let kind = objectsync_model::ProcessKind::Upsert;
    let job = Job::decode(kind, body).unwrap();
    let name = objectsync_model::ObjectTypeName::parse("vehicle").unwrap();
    let engine = objectsync_store::Engine::detect(&app.pool.get().await.unwrap())
        .await
        .unwrap();
    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let (process_id, xact_id) = objectsync_store::processes::insert(
        &tx,
        engine,
        objectsync_store::processes::NewProcess {
            org: objectsync_model::OrgId(org.id),
            kind,
            object_type: name.as_str(),
            total: 1,
            footprint: &job.footprint(&name),
            queue: "ignored",
        },
    )
    .await
    .unwrap();
    let meta = objectsync_model::BatchMeta {
        org_id: objectsync_model::OrgId(org.id),
        process_id,
        kind,
        object_type: name,
        xact_id,
        enqueued_at: chrono::Utc::now(),
        request_id: None,
    };
    let commit = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.commit().await.unwrap();
    };
    let local = apply::Local::new(4);
    let (handled, ()) = tokio::join!(
        apply::handle(&app.pool, &local, &meta, &job, 1, config(engine)),
        commit
    );
    assert!(
        matches!(handled, Ok(Handled::Applied(ref c)) if c.created == 1),
        "{handled:?}"
    );
    let p = app.process(&org, process_id.get()).await;
    assert_eq!(p["status"], "completed", "{p}");

    // Marking a batch started commits without waiting for the flush, and
    // that setting ends with its statement's transaction.
    let queued = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "later"}}]),
        )
        .await;
    let mut c = app.pool.get().await.unwrap();
    let org_id = objectsync_model::OrgId(org.id);
    let queued = objectsync_model::ProcessId(queued);
    let started = objectsync_store::processes::mark_started(&c, org_id, queued, 1).await;
    assert!(started.unwrap());
    let setting: String = c
        .query_one("show synchronous_commit", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(setting, "on");
    // Failing a process is final: its commit, and that of any transaction
    // it is part of, waits for the flush.
    let tx = c.transaction().await.unwrap();
    let failed = objectsync_store::processes::fail(&tx, org_id, queued, "test").await;
    assert!(failed.unwrap());
    let setting: String = tx
        .query_one("show synchronous_commit", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        setting, "on",
        "failing a process keeps the commit synchronous"
    );
    tx.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_a_batch_waiting_to_retry_is_handed_back_at_once() {
    let mut app = spawn_app_with(1, |s| s.worker.retry_budget_ms = 60_000).await;
    let org = app.org_with_vehicles().await;
    // A fault on every insert, so that the batch waits and retries.
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute(
            "create function slow_down() returns trigger language plpgsql as $$
             begin raise exception 'injected fault' using errcode = '40001'; end $$;
             create trigger slow_down before insert on records
               for each row execute function slow_down();",
        )
        .await
        .unwrap();
    let id = app
        .upsert_accepted(&org, "vehicle", json!([{"identifiers": {"ext_id": "a"}}]))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = std::time::Instant::now();
    app.stop_workers().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "took {:?}",
        stopping.elapsed()
    );
    let p = app.process(&org, id).await;
    assert_eq!(
        p["status"], "in_process",
        "shutdown must not fail the batch: {p}"
    );
    assert_eq!(app.batch_depth().await, 1, "the batch is back on the queue");
    // Once the fault is gone, a new worker applies it.
    client
        .batch_execute("drop trigger slow_down on records")
        .await
        .unwrap();
    app.start_worker().await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_read_still_ends_its_process() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let mut cases = Vec::new();
    for case in ["garbage", "truncated", "other version"] {
        let id = app
            .upsert_accepted(
                &org,
                "vehicle",
                json!([{"identifiers": {"ext_id": "a"}, "attributes": {"name": "x"}}]),
            )
            .await;
        let (body, props) = take_message(&app).await;
        let (body, props) = match case {
            "garbage" => (b"\x00\xffnot json at all".to_vec(), props),
            "truncated" => (body[..body.len() / 2].to_vec(), props),
            _ => {
                let mut headers = props.headers().clone().unwrap_or_default();
                headers.insert(
                    objectsync_model::envelope::header::VERSION.into(),
                    lapin::types::AMQPValue::LongLongInt(99),
                );
                (body, props.with_headers(headers))
            }
        };
        cases.push((case, id, body, props));
    }
    // Published only now: taking a message must find the batch's own.
    for (_, _, body, props) in &cases {
        app.publish_raw_with(body, props.clone()).await;
    }
    app.start_worker().await;
    for (case, id, _, _) in cases {
        let p = app.wait_for_process(&org, id).await;
        assert_eq!(p["status"], "failed", "{case}: {p}");
        let error = p["info"]["error"].as_str().unwrap_or_default();
        let expected = if case == "other version" {
            "version 99"
        } else {
            "cannot be read"
        };
        assert!(error.contains(expected), "{case}: {error}");
    }
    assert_eq!(db_value(&app, "select count(*) from records").await, 0);
    wait_for_dead_letters(&app, 3).await;
}
