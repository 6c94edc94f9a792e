//! The AMQP inbox: a batch published to `{prefix}.inbox` is answered on
//! `reply_to` as the HTTP API would answer it, and applied; refusals create
//! nothing; a message delivered again finds its first delivery's process.

use objectsync_infra::settings::LimitSettings;
use objectsync_model::limits::{BACKLOG_RETRY_AFTER_SECS, MAX_BODY_BYTES};
use objectsync_testkit::{TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

use crate::inbox_client::{Msg, Producer};

fn car(ext: &str, name: &str) -> Value {
    json!({"records": [{"identifiers": {"ext_id": ext}, "attributes": {"name": name}}]})
}

/// What the HTTP API answers to the request `msg` stands for.
async fn over_http(app: &TestApp, msg: &Msg<'_>) -> (i64, Value) {
    let kind = msg.kind.unwrap_or("upsert");
    let mut req = app
        .client
        .post(app.url(&format!("/v3/objects/{}/batch/{kind}", msg.routing_key)))
        .body(msg.body.clone());
    if let Some(key) = msg.api_key {
        req = req.header("api-key", key);
    }
    if let Some(t) = msg.content_type {
        req = req.header("content-type", t);
    }
    let resp = req.send().await.expect("request");
    let status = i64::from(resp.status().as_u16());
    (status, resp.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_published_to_the_inbox_is_answered_and_applied() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let mut producer = Producer::connect(&app).await;

    let reply = producer
        .send(&Msg::upsert("vehicle", &org.key, &car("car-1", "Zoe")))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(
        reply.body["message"],
        "Batch object records are being processed"
    );
    let id = reply.body["processId"].as_i64().expect("processId");
    let process = app.wait_for_process(&org, id).await;
    assert_eq!(process["status"], "completed", "{process}");
    let records = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(records["car-1"]["attributes"]["name"], "Zoe");

    let delete = Msg {
        kind: Some("delete"),
        content_type: None,
        ..Msg::upsert(
            "vehicle",
            &org.key,
            &json!({"identifiers": {"ext_ids": ["car-1"]}}),
        )
    };
    let reply = producer.send(&delete).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let id = reply.body["processId"].as_i64().expect("processId");
    assert_eq!(app.wait_for_process(&org, id).await["status"], "completed");
    assert!(app.records_by_ext_id(&org, "vehicle").await.is_empty());
    producer.close().await;

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    for needle in [
        "objectsync_inbox_messages_total{outcome=\"accepted\",status=\"202\"}",
        "objectsync_inbox_message_duration_seconds_bucket{outcome=\"accepted\",status=\"202\"",
        "objectsync_inbox_replies_total{result=\"confirmed\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_answered_like_http_and_create_nothing() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let disabled = app.create_org(false).await;
    let revoked = app.org_with_vehicles().await;
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "update api_keys set revoked_at = now() where org_id = $1",
            &[&revoked.id],
        )
        .await
        .unwrap();
    let good = car("a", "A");
    let base = Msg::upsert("vehicle", &org.key, &good);
    let too_large = format!("\"{}\"", "x".repeat(MAX_BODY_BYTES));
    let cases = [
        (
            "unknown key",
            401,
            Msg {
                api_key: Some("osk_nope"),
                ..base.clone()
            },
        ),
        (
            "no key",
            401,
            Msg {
                api_key: None,
                ..base.clone()
            },
        ),
        (
            "revoked key",
            401,
            Msg {
                api_key: Some(&revoked.key),
                ..base.clone()
            },
        ),
        (
            "no custom objects",
            403,
            Msg {
                api_key: Some(&disabled.key),
                ..base.clone()
            },
        ),
        (
            "not JSON",
            400,
            Msg {
                body: b"{not json".to_vec(),
                ..base.clone()
            },
        ),
        (
            "no records",
            400,
            Msg {
                body: b"{}".to_vec(),
                ..base.clone()
            },
        ),
        (
            "bad type name",
            400,
            Msg {
                routing_key: "Bad-Type",
                ..base.clone()
            },
        ),
        (
            "unknown type",
            404,
            Msg {
                routing_key: "spaceship",
                ..base.clone()
            },
        ),
        (
            "too large",
            413,
            Msg {
                body: too_large.into_bytes(),
                ..base.clone()
            },
        ),
        (
            "not JSON media",
            415,
            Msg {
                content_type: Some("text/csv"),
                ..base.clone()
            },
        ),
    ];
    let mut producer = Producer::connect(&app).await;
    for (what, status, msg) in &cases {
        let reply = producer.send(msg).await;
        let (http_status, http_body) = over_http(&app, msg).await;
        assert_eq!(reply.status, *status, "{what}: {}", reply.body);
        assert_eq!(
            (reply.status, &reply.body),
            (http_status, &http_body),
            "{what}: the inbox answers as HTTP does"
        );
    }
    // What HTTP says with its path, the inbox says with `kind`.
    for kind in [Some("merge"), None] {
        let reply = producer
            .send(&Msg {
                kind,
                ..base.clone()
            })
            .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(reply.body["message"].as_str().unwrap().contains("'kind'"));
    }
    assert_eq!(app.process_count().await, 0);
    assert_eq!(app.batch_depth().await, 0);
    assert_eq!(app.queue_depth(&app.topology().inbox).await, 0);
    producer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_rate_or_its_backlog_cap_a_producer_is_answered_429() {
    let app = spawn_app_with(0, |s| {
        s.limits = LimitSettings {
            writes_per_second: 0.01,
            writes_burst: 1.0,
            ..LimitSettings::UNLIMITED
        };
    })
    .await;
    let org = app.org_with_vehicles().await;
    let mut producer = Producer::connect(&app).await;
    let first = producer
        .send(&Msg::upsert("vehicle", &org.key, &car("a", "A")))
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.int("x-sib-ratelimit-limit"), Some(1));
    assert_eq!(first.int("x-sib-ratelimit-remaining"), Some(0));
    let refused = producer
        .send(&Msg::upsert("vehicle", &org.key, &car("b", "B")))
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["code"], "too_many_requests");
    assert_eq!(refused.int("retry-after"), Some(100));
    assert_eq!(app.process_count().await, 1);

    // The backlog cap: one open process at most.
    let capped = spawn_app_with(0, |s| {
        s.limits = LimitSettings {
            max_open_processes: 1,
            ..LimitSettings::UNLIMITED
        };
    })
    .await;
    let org = capped.org_with_vehicles().await;
    let mut producer = Producer::connect(&capped).await;
    let first = producer
        .send(&Msg::upsert("vehicle", &org.key, &car("a", "A")))
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    let refused = producer
        .send(&Msg::upsert("vehicle", &org.key, &car("b", "B")))
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(
        refused.int("retry-after"),
        Some(BACKLOG_RETRY_AFTER_SECS as i64)
    );
    assert_eq!(capped.process_count().await, 1);
}
