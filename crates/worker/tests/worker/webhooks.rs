//! Webhook deliveries: each event of an organization POSTed to its
//! webhooks, signed so that the Standard Webhooks library verifies it;
//! retried after a failure under the same `webhook-id`; failed once the
//! retries are over and sent again on request; and an endpoint that does
//! not answer never holds back another organization's deliveries.

use std::time::{Duration, Instant};

use objectsync_model::OrgId;
use objectsync_store::deliveries;
use objectsync_testkit::events::{EventTap, Received, Receiver};
use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::{Value, json};
use standardwebhooks::Webhook;

/// Retries within a tenth of a second, so tests need not wait.
fn quick_retries(s: &mut objectsync_infra::Settings) {
    s.webhooks.retry_initial_ms = 100;
    s.webhooks.retry_max_ms = 200;
    s.events.poll_ms = 50;
}

fn header(r: &Received, name: &str) -> String {
    r.headers[name].to_str().unwrap().to_owned()
}

/// Verifies `r` with the Standard Webhooks library and the secret the
/// admin API answered; its body.
fn verified(r: &Received, secret: &str) -> Value {
    Webhook::new(secret)
        .unwrap()
        .verify(&r.body, &r.headers)
        .expect("the Standard Webhooks library verifies the delivery");
    serde_json::from_slice(&r.body).unwrap()
}

async fn deliveries_left(app: &TestApp) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one("select count(*) from webhook_deliveries", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_signed_and_a_500_is_retried_under_the_same_id() {
    let app = spawn_app_with(1, quick_retries).await;
    let tap = EventTap::bind(&app.settings.amqp).await.unwrap();
    let receiver = Receiver::start().await;
    receiver.fail_next(1);
    let org = app.org_with_vehicles().await;
    let (_, secret) = app.register_webhook(&org, &receiver.url).await;
    let p = app
        .upsert_and_wait(&org, "vehicle", json!([{"attributes": {"name": "A"}}]))
        .await;

    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "a 500, then the retry");
    assert_eq!(got[0].answered, 500);
    assert_eq!(got[1].answered, 200);
    assert_eq!(header(&got[0], "webhook-id"), header(&got[1], "webhook-id"));
    assert_eq!(header(&got[1], "content-type"), "application/json");
    let body = verified(&got[1], &secret);
    assert!(
        verified(&got[0], &secret) == body,
        "the same body every time"
    );
    assert_eq!(body["processId"], p["id"]);
    assert_eq!(body["status"], "completed");
    assert_eq!(body["info"], p["info"]);
    // The webhook id is the event's id, as on the exchange.
    let events = tap.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(
        events[0].message_id.as_deref(),
        Some(header(&got[1], "webhook-id").as_str())
    );
    // Delivered: nothing is left to send.
    let deadline = Instant::now() + Duration::from_secs(5);
    while deliveries_left(&app).await > 0 {
        assert!(Instant::now() < deadline, "the delivery row is still there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2, "nothing more after the 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_failed_for_good_is_kept_and_sent_again_on_request() {
    let app = spawn_app_with(1, |s| {
        quick_retries(s);
        // The first failed attempt is past the retries.
        s.webhooks.retry_for_secs = 0;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let org = app.org_with_vehicles().await;
    let (_, secret) = app.register_webhook(&org, &receiver.url).await;
    app.upsert_and_wait(&org, "vehicle", json!([{"attributes": {"name": "A"}}]))
        .await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let failed = wait_for_failed(&app, OrgId(org.id)).await;
    assert_eq!(failed.attempts, 1);
    assert!(
        failed.last_error.as_deref().unwrap_or("").contains("503"),
        "{failed:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "no retry after failing");

    receiver.answer(200);
    let client = app.pool.get().await.unwrap();
    assert!(
        deliveries::resend(&client, OrgId(org.id), failed.id)
            .await
            .unwrap()
    );
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(header(&got[0], "webhook-id"), header(&got[1], "webhook-id"));
    verified(&got[1], &secret);
}

async fn wait_for_failed(app: &TestApp, org: OrgId) -> deliveries::Failed {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let client = app.pool.get().await.unwrap();
        if let Some(f) = deliveries::failed(&client, org, 10).await.unwrap().pop() {
            return f;
        }
        assert!(Instant::now() < deadline, "no failed delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_hangs_does_not_delay_another_organizations_deliveries() {
    let app = spawn_app_with(1, |s| {
        quick_retries(s);
        s.webhooks.timeout_ms = 3_000;
        s.webhooks.per_endpoint = 2;
    })
    .await;
    let slow = Receiver::start().await;
    slow.delay(Duration::from_secs(10));
    let fast = Receiver::start().await;
    let stuck = app.org_with_vehicles().await;
    let quick = app.org_with_vehicles().await;
    app.register_webhook(&stuck, &slow.url).await;
    let (_, secret) = app.register_webhook(&quick, &fast.url).await;
    for i in 0..8 {
        post(&app, &stuck, i).await;
    }
    // The slow endpoint now holds its slots for the whole timeout.
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow.arrived() < 2 {
        assert!(
            Instant::now() < deadline,
            "the slow endpoint got no request"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let id = post(&app, &quick, 0).await;
    let got = fast.wait_for(1, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert_eq!(got.len(), 1);
    assert_eq!(verified(&got[0], &secret)["processId"], id);
    assert!(
        took < Duration::from_secs(2),
        "the quiet organization's delivery took {took:?} behind the hanging endpoint"
    );
    assert_eq!(slow.arrived(), 2, "never more than its slots at once");
}

/// Posts one batch for `org` and waits for it; its process id.
async fn post(app: &TestApp, org: &Org, i: usize) -> i64 {
    let p = app
        .upsert_and_wait(
            org,
            "vehicle",
            json!([{"identifiers": {"ext_id": format!("r{i}")}, "attributes": {"name": "x"}}]),
        )
        .await;
    p["id"].as_i64().unwrap()
}
