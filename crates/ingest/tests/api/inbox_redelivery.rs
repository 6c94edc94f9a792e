//! Inbox messages delivered more than once make one process: the
//! `message_id` is the idempotency key, and without one a digest of the
//! message is. A database that cannot take a message now is waited for,
//! never answered with a refusal.

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use objectsync_testkit::spawn_app_with;
use serde_json::json;

use crate::inbox_client::{Msg, Producer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_id_answers_the_same_process() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let mut producer = Producer::connect(&app).await;
    let body = json!({"records": [{"identifiers": {"ext_id": "a"}}]});
    let msg = Msg {
        message_id: Some("batch-0001"),
        ..Msg::upsert("vehicle", &org.key, &body)
    };
    let first = producer.send(&msg).await;
    let again = producer.send(&msg).await;
    assert_eq!((first.status, again.status), (202, 202), "{}", again.body);
    assert_eq!(first.body["processId"], again.body["processId"]);
    assert_eq!(app.process_count().await, 1);
    assert_eq!(app.batch_depth().await, 1);

    // The same id with another batch: 422, as the same Idempotency-Key.
    let other = json!({"records": [{"identifiers": {"ext_id": "b"}}]});
    let reused = producer
        .send(&Msg {
            message_id: Some("batch-0001"),
            ..Msg::upsert("vehicle", &org.key, &other)
        })
        .await;
    assert_eq!(reused.status, 422, "{}", reused.body);
    // And over HTTP the message id is that key.
    let resp = app
        .client
        .post(app.url("/v3/objects/vehicle/batch/upsert"))
        .header("api-key", &org.key)
        .header("Idempotency-Key", "batch-0001")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let http: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(http["processId"], first.body["processId"]);
    assert_eq!(app.process_count().await, 1);
}

/// The answer cannot be delivered (its queue refuses every message) after
/// the process is committed: the message is handed back and delivered
/// again and again, as after a crash between the commit and the ack, and
/// each delivery finds the same process by the digest of the message
/// (it has no `message_id`). Once the queue takes answers, the producer
/// gets the 202 of that one process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_again_after_its_process_committed_makes_no_second_one() {
    let app = spawn_app_with(1, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let reply_queue = format!("{}.test-replies", app.settings.amqp.prefix);
    let conn = objectsync_infra::amqp::connect(&app.settings.amqp, "test")
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut full = FieldTable::default();
    full.insert("x-max-length".into(), AMQPValue::LongInt(0));
    full.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    let declare = |args| {
        channel.queue_declare(
            reply_queue.as_str().into(),
            QueueDeclareOptions::default(),
            args,
        )
    };
    declare(full).await.unwrap();

    let mut producer = Producer::connect(&app).await;
    let msg = Msg::upsert(
        "vehicle",
        &org.key,
        &json!({"records": [{"identifiers": {"ext_id": "a"}}]}),
    );
    let correlation_id = producer.publish_to(&msg, Some(&reply_queue)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.process_count().await == 0 {
        assert!(std::time::Instant::now() < deadline, "no process yet");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Let it be delivered a few more times, then take answers.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    channel
        .queue_delete(reply_queue.as_str().into(), Default::default())
        .await
        .unwrap();
    declare(FieldTable::default()).await.unwrap();
    let answer = loop {
        if let Some(got) = channel
            .basic_get(
                reply_queue.as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            break got;
        }
        assert!(std::time::Instant::now() < deadline, "no answer");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let props = &answer.delivery.properties;
    assert_eq!(
        props.correlation_id().as_ref().map(|c| c.as_str()),
        Some(correlation_id.as_str())
    );
    let body: serde_json::Value = serde_json::from_slice(&answer.delivery.data).unwrap();
    let id = body["processId"].as_i64().expect("a 202");
    assert_eq!(app.process_count().await, 1);
    assert_eq!(app.wait_for_process(&org, id).await["status"], "completed");
    assert_eq!(app.queue_depth(&app.topology().inbox).await, 0);
    let _ = channel
        .queue_delete(reply_queue.as_str().into(), Default::default())
        .await;
    let _ = conn.close(200, "OK".into()).await;
    producer.close().await;
}

/// While the organization's backlog lock is held (as by a stuck
/// transaction), HTTP answers 503; the inbox retries the message instead
/// and answers 202 once the lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_take_a_message_now_is_waited_for_not_answered() {
    let app = spawn_app_with(0, |s| {
        s.limits.max_open_processes = 100;
        s.database.lock_timeout_ms = 100;
    })
    .await;
    let org = app.org_with_vehicles().await;
    let holder = app.pool.get().await.unwrap();
    let lock = (objectsync_store::limits::BACKLOG_LOCK_CLASS, org.id as i32);
    holder
        .execute("select pg_advisory_lock($1, $2)", &[&lock.0, &lock.1])
        .await
        .unwrap();
    let body = json!({"records": [{"identifiers": {"ext_id": "a"}}]});
    assert_eq!(app.upsert(&org.key, "vehicle", &body).await.status(), 503);

    let mut producer = Producer::connect(&app).await;
    producer
        .publish_to(&Msg::upsert("vehicle", &org.key, &body), None)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(app.process_count().await, 0);
    holder
        .execute("select pg_advisory_unlock($1, $2)", &[&lock.0, &lock.1])
        .await
        .unwrap();
    let reply = producer.reply().await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(app.process_count().await, 1);
}
