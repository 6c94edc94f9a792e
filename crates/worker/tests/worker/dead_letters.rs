//! Dead letters kept in PostgreSQL: what the tracker stores, the legacy dead
//! queue that no longer grows, and resolving a dead letter once.

use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection};
use objectsync_infra::Topology;
use objectsync_model::{OrgId, ProcessId, ProcessKind};
use objectsync_store::dead_letters::{self, DeadLetterSummary, Filter, NewDeadLetter, Resolution};
use objectsync_testkit::{TestApp, spawn_app_with};
use serde_json::json;

/// Waits until at least `n` dead letters are kept; all of them, newest
/// first.
pub(crate) async fn wait_for_dead_letters(app: &TestApp, n: usize) -> Vec<DeadLetterSummary> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let client = app.pool.get().await.unwrap();
        let kept = dead_letters::list(&client, Filter::All, None, 100)
            .await
            .unwrap();
        if kept.len() >= n {
            return kept;
        }
        assert!(
            Instant::now() < deadline,
            "{} dead letters, not {n}",
            kept.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connect(app: &TestApp) -> Connection {
    objectsync_infra::amqp::connect(&app.settings.amqp, "test")
        .await
        .expect("broker")
}

/// Whether `queue` exists (a failed passive declare closes its channel, so
/// it gets one of its own).
async fn queue_exists(conn: &Connection, queue: &str) -> bool {
    let channel = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let found = channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .is_ok();
    if found {
        let _ = channel.close(200, "OK".into()).await;
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_keeps_failing_is_kept_with_its_body_reason_and_deliveries() {
    let app = spawn_app_with(1, |s| {
        s.amqp.max_deliveries = 3;
        s.worker.retry_budget_ms = 100;
    })
    .await;
    let org = app.org_with_vehicles().await;
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute(
            "create function fail_always() returns trigger language plpgsql as $$
             begin raise exception 'injected fault' using errcode = '40001'; end $$;
             create trigger fail_always before insert on records
               for each row execute function fail_always();",
        )
        .await
        .unwrap();
    let records = json!([{"identifiers": {"ext_id": "boom"}}]);
    let id = app.upsert_accepted(&org, "vehicle", records.clone()).await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["status"], "failed", "{p}");

    let kept = wait_for_dead_letters(&app, 1).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    let d = &kept[0];
    assert_eq!(d.org_id, Some(OrgId(org.id)));
    assert_eq!(d.process_id, Some(ProcessId(id)));
    assert_eq!(d.object_type.as_deref(), Some("vehicle"));
    assert_eq!(d.kind, Some(ProcessKind::Upsert));
    assert_eq!(d.deliveries, 3);
    assert_eq!(Some(d.reason.as_str()), p["info"]["error"].as_str());
    assert!(
        d.reason.contains("3 deliveries") && d.reason.contains("injected fault"),
        "{}",
        d.reason
    );
    assert_eq!(d.resolution, None);
    let full = dead_letters::get(&client, d.id).await.unwrap().unwrap();
    // The body ingest queued: the request body, verbatim.
    assert_eq!(
        full.body,
        json!({ "records": records }).to_string().into_bytes()
    );
    assert_eq!(full.summary.body_bytes as usize, full.body.len());
    let headers = full.headers.expect("headers");
    assert_eq!(headers["x-objectsync-process-id"], json!(id), "{headers}");
    assert_eq!(headers["x-death"][0]["reason"], "rejected", "{headers}");
    assert_eq!(dead_letters::unresolved_count(&client).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_is_kept_after_one_delivery() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(&org, "vehicle", json!([{"identifiers": {"ext_id": "a"}}]))
        .await;
    let client = app.pool.get().await.unwrap();
    client
        .execute("delete from object_types", &[])
        .await
        .unwrap();
    app.start_worker().await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["status"], "failed");
    let kept = wait_for_dead_letters(&app, 1).await;
    assert_eq!(kept[0].process_id, Some(ProcessId(id)));
    assert_eq!(kept[0].deliveries, 1);
    assert!(kept[0].reason.contains("no longer exists"), "{kept:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_naming_no_process_is_kept_with_nulls() {
    let app = spawn_app_with(1, |_| {}).await;
    app.publish_raw(b"\x00\xffnot a batch").await;
    let kept = wait_for_dead_letters(&app, 1).await;
    let d = &kept[0];
    assert_eq!((d.org_id, d.process_id), (None, None), "{d:?}");
    assert_eq!((d.object_type.as_deref(), d.kind), (None, None));
    assert_eq!(d.deliveries, 1);
    assert!(d.reason.contains("cannot be read"), "{}", d.reason);
    let client = app.pool.get().await.unwrap();
    let full = dead_letters::get(&client, d.id).await.unwrap().unwrap();
    assert_eq!(full.body, b"\x00\xffnot a batch");
    // Acknowledged: nothing left in the tracker's queue.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.queue_depth(&app.topology().dead_track_queue).await > 0 {
        assert!(Instant::now() < deadline, "dead letter not acknowledged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_dead_queue_is_unbound_and_keeps_what_it_holds() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let topology = app.topology();
    let conn = connect(&app).await;
    topology.declare(&conn).await.unwrap();
    assert!(
        !queue_exists(&conn, &topology.dead_queue).await,
        "no longer declared"
    );
    // The queue as earlier versions left it: bound, holding a dead letter.
    let channel = conn.create_channel().await.unwrap();
    let mut quorum = FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(topology.dead_queue.as_str().into(), durable, quorum)
        .await
        .unwrap();
    channel
        .queue_bind(
            topology.dead_queue.as_str().into(),
            topology.dead_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .basic_publish(
            topology.dead_exchange.as_str().into(),
            "".into(),
            BasicPublishOptions::default(),
            b"an old dead letter",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    // It reached both queues; the tracker is not running yet.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.queue_depth(&topology.dead_queue).await < 1 {
        assert!(Instant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Declaring unbinds it, again and again without failing.
    topology.declare(&conn).await.unwrap();
    topology.declare(&conn).await.unwrap();
    app.start_worker().await;
    app.publish_raw(b"garbage").await;
    let kept = wait_for_dead_letters(&app, 2).await;
    let bodies: Vec<Vec<u8>> = {
        let client = app.pool.get().await.unwrap();
        let mut bodies = Vec::new();
        for d in &kept {
            bodies.push(
                dead_letters::get(&client, d.id)
                    .await
                    .unwrap()
                    .unwrap()
                    .body,
            );
        }
        bodies
    };
    assert!(bodies.contains(&b"garbage".to_vec()), "{kept:?}");
    assert!(bodies.contains(&b"an old dead letter".to_vec()), "{kept:?}");
    assert_eq!(
        app.queue_depth(&topology.dead_queue).await,
        1,
        "the legacy queue keeps what it had and receives nothing new"
    );
    let _ = conn.close(200, "OK".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topology_whose_queues_are_absent_succeeds() {
    let app = spawn_app_with(0, |_| {}).await;
    let mut amqp = app.settings.amqp.clone();
    amqp.prefix = format!("{}-other", amqp.prefix);
    amqp.partitions = 1;
    let other = Topology::new(&amqp);
    let conn = connect(&app).await;
    other.declare(&conn).await.unwrap();
    // The legacy dead queue was never declared: RabbitMQ answers its
    // deletion with success, and the rest is deleted too.
    let channel = conn.create_channel().await.unwrap();
    other.delete(&channel).await.unwrap();
    assert!(!queue_exists(&conn, &other.dead_track_queue).await);
    // Nothing left at all: still no error.
    other.delete(&channel).await.unwrap();
    let _ = conn.close(200, "OK".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_kept_once_and_resolved_once() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = OrgId(7);
    let letter = |pid: i64| NewDeadLetter {
        named: Some((org, ProcessId(pid))),
        object_type: Some("vehicle"),
        kind: Some(ProcessKind::Delete),
        reason: "dead-lettered (rejected)",
        deliveries: 2,
        headers: None,
        body: b"{}",
    };
    let mut client = app.pool.get().await.unwrap();
    let mut ids = Vec::new();
    for pid in [1, 2, 3] {
        let tx = client.transaction().await.unwrap();
        assert!(dead_letters::record(&tx, &letter(pid)).await.unwrap());
        // The broker delivered it twice: kept once.
        assert!(!dead_letters::record(&tx, &letter(pid)).await.unwrap());
        tx.commit().await.unwrap();
        let id: i64 = client
            .query_one("select max(id) from dead_letters", &[])
            .await
            .unwrap()
            .get(0);
        ids.push(id);
    }
    assert_eq!(dead_letters::unresolved_count(&client).await.unwrap(), 3);

    // Two operators replay the second at once: one of them wins.
    let tx = client.transaction().await.unwrap();
    assert!(
        dead_letters::resolve(
            &tx,
            ids[1],
            Resolution::Replayed,
            "alice",
            Some(ProcessId(42))
        )
        .await
        .unwrap()
    );
    let racing = {
        let pool = app.pool.clone();
        let id = ids[1];
        tokio::spawn(async move {
            let other = pool.get().await.unwrap();
            dead_letters::resolve(&other, id, Resolution::Discarded, "bob", None).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    assert!(!racing.await.unwrap().unwrap(), "resolved twice");

    let got = dead_letters::get(&client, ids[1]).await.unwrap().unwrap();
    assert_eq!(got.summary.resolution, Some(Resolution::Replayed));
    assert_eq!(got.summary.resolved_by.as_deref(), Some("alice"));
    assert_eq!(got.summary.replayed_as, Some(ProcessId(42)));
    assert!(got.summary.resolved_at.is_some());
    assert_eq!(got.summary.kind, Some(ProcessKind::Delete));
    assert_eq!(dead_letters::unresolved_count(&client).await.unwrap(), 2);

    let listed = |filter, before| {
        let client = &client;
        async move {
            dead_letters::list(client, filter, before, 10)
                .await
                .unwrap()
                .iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(Filter::Unresolved, None).await, vec![ids[2], ids[0]]);
    assert_eq!(
        listed(Filter::All, None).await,
        vec![ids[2], ids[1], ids[0]]
    );
    assert_eq!(
        listed(Filter::All, Some(ids[2])).await,
        vec![ids[1], ids[0]]
    );
    assert!(dead_letters::get(&client, -1).await.unwrap().is_none());
}
