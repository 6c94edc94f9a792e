//! Tenants that cannot hurt each other: rate limits with Brevo's headers,
//! the backlog cap, per-organization overrides, and a client that backs
//! off on 429 the way Brevo's SDK does.

use std::time::{Duration, Instant};

use objectsync_infra::settings::LimitSettings;
use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::{Value, json};

fn header(resp: &reqwest::Response, name: &str) -> Option<u64> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

async fn one_record(app: &TestApp, org: &Org, ext: &str) -> reqwest::Response {
    app.upsert(
        &org.key,
        "vehicle",
        &json!({"records": [{"identifiers": {"ext_id": ext}}]}),
    )
    .await
}

fn writes(per_second: f64, burst: f64) -> LimitSettings {
    LimitSettings {
        writes_per_second: per_second,
        writes_burst: burst,
        ..LimitSettings::UNLIMITED
    }
}

#[tokio::test]
async fn over_the_rate_a_batch_gets_429_with_brevo_headers_and_the_limit_comes_back() {
    let app = spawn_app_with(0, |s| s.limits = writes(1.0, 3.0)).await;
    let org = app.org_with_vehicles().await;
    let other = app.org_with_vehicles().await;

    for remaining in [2, 1, 0] {
        let resp = one_record(&app, &org, "v").await;
        assert_eq!(resp.status(), 202);
        assert_eq!(header(&resp, "x-sib-ratelimit-limit"), Some(3));
        assert_eq!(header(&resp, "x-sib-ratelimit-remaining"), Some(remaining));
        assert!(header(&resp, "x-sib-ratelimit-reset").unwrap() <= 3);
        assert_eq!(header(&resp, "retry-after"), None);
    }
    let refused = one_record(&app, &org, "v").await;
    assert_eq!(refused.status(), 429);
    let after = header(&refused, "retry-after").expect("Retry-After");
    assert!((1..=1).contains(&after), "Retry-After {after}");
    assert_eq!(header(&refused, "x-sib-ratelimit-limit"), Some(3));
    assert_eq!(header(&refused, "x-sib-ratelimit-remaining"), Some(0));
    // Brevo's reset: when a client that ran out may send again.
    assert_eq!(header(&refused, "x-sib-ratelimit-reset"), Some(after));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "too_many_requests");
    assert!(
        body["message"].as_str().unwrap().contains("retry after"),
        "{body}"
    );
    // Nothing was recorded for the refused batch.
    assert_eq!(app.process_count().await, 3);
    assert_eq!(app.batch_depth().await, 3);

    // Another organization has a bucket of its own, and reads another.
    assert_eq!(one_record(&app, &other, "w").await.status(), 202);
    let read = app.get(&org.key, "/v3/processes").await;
    assert_eq!(read.status(), 200);

    // After Retry-After, a token is back.
    tokio::time::sleep(Duration::from_secs(after) + Duration::from_millis(50)).await;
    assert_eq!(one_record(&app, &org, "v").await.status(), 202);
}

#[tokio::test]
async fn reads_have_their_own_bucket() {
    let app = spawn_app_with(0, |s| {
        s.limits = LimitSettings {
            reads_per_second: 0.5,
            reads_burst: 2.0,
            ..LimitSettings::UNLIMITED
        };
    })
    .await;
    let org = app.org_with_vehicles().await;
    for _ in 0..2 {
        assert_eq!(app.get(&org.key, "/v3/processes").await.status(), 200);
    }
    let refused = app.get(&org.key, "/v3/objects/vehicle/records").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), Some(2));
    // Writes are not reads.
    assert_eq!(one_record(&app, &org, "v").await.status(), 202);
}

#[tokio::test]
async fn an_organization_with_too_many_open_batches_gets_429_until_they_are_applied() {
    let mut app = spawn_app_with(0, |s| {
        s.limits = LimitSettings {
            max_open_processes: 3,
            ..LimitSettings::UNLIMITED
        };
    })
    .await;
    let org = app.org_with_vehicles().await;
    let quiet = app.org_with_vehicles().await;
    for i in 0..3 {
        assert_eq!(one_record(&app, &org, &format!("v{i}")).await.status(), 202);
    }
    let refused = one_record(&app, &org, "v3").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), Some(5));
    // The headers describe the cap that refused it.
    assert_eq!(header(&refused, "x-sib-ratelimit-limit"), Some(3));
    assert_eq!(header(&refused, "x-sib-ratelimit-remaining"), Some(0));
    assert_eq!(header(&refused, "x-sib-ratelimit-reset"), Some(5));
    let body: Value = refused.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("3 batches waiting"), "{body}");
    assert!(message.contains("max_open_processes"), "{body}");
    assert_eq!(app.batch_depth().await, 3);
    // The cap is the organization's own.
    assert_eq!(one_record(&app, &quiet, "q").await.status(), 202);

    app.start_worker().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = one_record(&app, &org, "v3").await;
        if resp.status() == 202 {
            break;
        }
        assert_eq!(resp.status(), 429);
        assert!(Instant::now() < deadline, "the backlog never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A batch refused by the backlog cap spends no token of the rate limit:
/// with one token left and a rate too slow to refill it, every refusal is
/// the cap's, and the token is still there once the backlog is gone.
#[tokio::test]
async fn a_batch_refused_by_the_backlog_cap_spends_no_token() {
    let mut app = spawn_app_with(0, |s| {
        s.limits = LimitSettings {
            max_open_processes: 1,
            ..writes(0.001, 2.0)
        };
    })
    .await;
    let org = app.org_with_vehicles().await;
    let accepted = one_record(&app, &org, "a").await;
    assert_eq!(accepted.status(), 202);
    assert_eq!(header(&accepted, "x-sib-ratelimit-remaining"), Some(1));
    for _ in 0..3 {
        let refused = one_record(&app, &org, "b").await;
        assert_eq!(refused.status(), 429);
        let body: Value = refused.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("batches waiting"),
            "{body}"
        );
    }
    app.start_worker().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let last = loop {
        let resp = one_record(&app, &org, "b").await;
        if resp.status() != 429 || header(&resp, "x-sib-ratelimit-limit") != Some(1) {
            break resp;
        }
        assert!(Instant::now() < deadline, "the backlog never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(last.status(), 202);
    assert_eq!(header(&last, "x-sib-ratelimit-remaining"), Some(0));
}

#[tokio::test]
async fn an_operator_sets_an_organizations_own_limits() {
    let app = spawn_app_with(0, |s| s.limits = writes(100.0, 100.0)).await;
    let org = app.org_with_vehicles().await;
    let path = format!("/admin/organizations/{}/limits", org.id);

    let resp = app
        .client
        .get(app.url(&path))
        .header("admin-token", objectsync_testkit::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["own"]["writes_burst"], Value::Null);
    assert_eq!(body["effective"]["writes_burst"], 100.0);

    let resp = app
        .admin_put(&path, &json!({"writes_per_second": 0.2, "writes_burst": 1}))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["effective"]["writes_burst"], 1.0);
    assert_eq!(body["effective"]["reads_per_second"], 0.0);

    assert_eq!(one_record(&app, &org, "a").await.status(), 202);
    let refused = one_record(&app, &org, "b").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), Some(5));

    for (bad, field) in [
        (json!({"writes_per_second": -1}), "writes_per_second"),
        (json!({"writes_per_second": 1e-300}), "writes_per_second"),
        (json!({"reads_per_second": 2e6}), "reads_per_second"),
        (json!({"writes_burst": 0.5}), "writes_burst"),
        (json!({"reads_burst": 9e18}), "reads_burst"),
        (json!({"max_open_processes": -3}), "max_open_processes"),
        (json!({"max_open_processes": 3e9}), "max_open_processes"),
        (json!({"max_open_processes": 2.5}), "max_open_processes"),
        (json!({"writes_per_second": "fast"}), "writes_per_second"),
        (json!({"burst": 3}), "burst"),
    ] {
        let resp = app.admin_put(&path, &bad).await;
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    let resp = app
        .admin_put("/admin/organizations/999999/limits", &json!({}))
        .await;
    assert_eq!(resp.status(), 404);

    // Back to the defaults.
    assert_eq!(app.admin_put(&path, &json!({})).await.status(), 200);
    assert_eq!(one_record(&app, &org, "c").await.status(), 202);
}

/// What Brevo's SDKs do: on 429, wait `Retry-After` seconds and send the
/// same request again.
#[tokio::test]
async fn a_client_that_honours_retry_after_gets_every_batch_through() {
    let app = spawn_app_with(1, |s| s.limits = writes(4.0, 2.0)).await;
    let org = app.org_with_vehicles().await;
    let mut refused = 0;
    let mut ids = Vec::new();
    for i in 0..8 {
        let body = json!({"records": [{"identifiers": {"ext_id": format!("v{i}")}}]});
        loop {
            let resp = app.upsert(&org.key, "vehicle", &body).await;
            if resp.status() == 429 {
                refused += 1;
                let after = header(&resp, "retry-after").expect("Retry-After");
                tokio::time::sleep(Duration::from_secs(after)).await;
                continue;
            }
            assert_eq!(resp.status(), 202);
            let body: Value = resp.json().await.unwrap();
            ids.push(body["processId"].as_i64().unwrap());
            break;
        }
    }
    assert!(refused > 0, "the client was never limited");
    for id in ids {
        assert_eq!(app.wait_for_process(&org, id).await["status"], "completed");
    }
    assert_eq!(app.records_by_ext_id(&org, "vehicle").await.len(), 8);
}
