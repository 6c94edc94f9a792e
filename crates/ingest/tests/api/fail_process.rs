//! Failing an open process by hand — admin API, CLI and console — and what
//! the console says about batches waiting for an older one.

use std::time::{Duration, Instant};

use objectsync_ingest::admin::cli::{self, AdminCommand};
use objectsync_testkit::{Org, TestApp, console_card, spawn_app_with};
use serde_json::{Value, json};

fn fail_path(org: &Org, id: i64) -> String {
    format!("/admin/organizations/{}/processes/{id}/fail", org.id)
}

async fn fail(app: &TestApp, org: &Org, id: i64, body: Value) -> (u16, Value) {
    let resp = app.admin_post(&fail_path(org, id), &body).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn failed_by(app: &TestApp, id: i64) -> Option<String> {
    let client = app.pool.get().await.unwrap();
    client
        .query_one("select failed_by from processes where id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_fails_an_open_process_once_and_it_is_never_applied() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let other = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(&org, "vehicle", json!([{"identifiers": {"ext_id": "a"}}]))
        .await;

    let (status, body) = fail(&app, &org, id, json!({"operator": "Grace"})).await;
    assert_eq!((status, &body["code"]), (400, &json!("missing_parameter")));
    let (status, _) = fail(&app, &org, id, json!({"reason": "  "})).await;
    assert_eq!(status, 400);
    let (status, _) = fail(&app, &other, id, json!({"reason": "x"})).await;
    assert_eq!(status, 404, "another organization's process");
    assert_eq!(app.process(&org, id).await["status"], "queued");

    let (status, body) = fail(
        &app,
        &org,
        id,
        json!({"reason": "sent twice by mistake", "operator": "Grace"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["process_id"], id);
    assert_eq!(body["failed_by"], "Grace");
    let p = app.process(&org, id).await;
    assert_eq!(p["status"], "failed");
    assert_eq!(
        p["info"]["error"],
        "failed by an operator: sent twice by mistake"
    );
    assert!(p["completed_at"].is_string(), "{p}");
    assert_eq!(failed_by(&app, id).await.as_deref(), Some("Grace"));

    let (status, body) = fail(&app, &org, id, json!({"reason": "again"})).await;
    assert_eq!((status, &body["code"]), (409, &json!("conflict")), "{body}");

    // Its message is still queued: a worker acknowledges it and applies
    // nothing.
    app.start_worker().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.batch_depth().await > 0 {
        assert!(Instant::now() < deadline, "the message was not consumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.process(&org, id).await["status"], "failed");
    assert!(app.records_by_ext_id(&org, "vehicle").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_fails_an_open_process() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(&org, "vehicle", json!([{"identifiers": {"ext_id": "a"}}]))
        .await;
    let out = cli::run(
        &app.settings,
        AdminCommand::FailProcess {
            org: org.id,
            process: id,
            reason: "lost in a purge".into(),
            operator: Some("Linus".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(out["status"], "failed", "{out}");
    assert_eq!(out["failed_by"], "Linus");
    assert_eq!(
        app.process(&org, id).await["info"]["error"],
        "failed by an operator: lost in a purge"
    );
    let again = cli::run(
        &app.settings,
        AdminCommand::FailProcess {
            org: org.id,
            process: id,
            reason: "again".into(),
            operator: None,
        },
    )
    .await;
    assert!(
        again.unwrap_err().to_string().contains("already ended"),
        "a process fails once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_what_a_batch_waits_for_and_fails_the_lost_one() {
    let mut app = spawn_app_with(0, |s| {
        s.worker.order_wait_ms = 200;
        s.worker.fail_lost_after_secs = 0;
    })
    .await;
    let org = app.org_with_vehicles().await;
    let lost = app
        .upsert_accepted(&org, "vehicle", json!([{"identifiers": {"ext_id": "x"}}]))
        .await;
    assert_eq!(app.take_batches().await.len(), 1);
    let waiting = app
        .upsert_accepted(&org, "vehicle", json!([{"identifiers": {"ext_id": "x"}}]))
        .await;
    app.start_worker().await;
    let cookie = app.console_cookie().await;
    let waiting_page = format!("/console/processes/{}/{waiting}", org.id);
    let lost_page = format!("/console/processes/{}/{lost}", org.id);
    let deadline = Instant::now() + Duration::from_secs(10);
    let html = loop {
        let html = app.console_page(&cookie, &waiting_page).await;
        if html.contains("id=\"waiting-for\"") {
            break html;
        }
        assert!(Instant::now() < deadline, "no 'waiting for' on {html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        html.contains(&format!(
            "Waiting for process <a href=\"{lost_page}\">#{lost}</a>"
        )),
        "{html}"
    );
    let overview = app.console_page(&cookie, "/console/overview/live").await;
    assert_eq!(console_card(&overview, "blocked"), "1");
    let html = app.console_page(&cookie, &lost_page).await;
    assert!(html.contains("id=\"waited-on\""), "{html}");
    assert!(html.contains("1 later batch(es)"), "{html}");

    // The fail button needs the session's CSRF token.
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let http = objectsync_testkit::no_redirects();
    let action = app.url(&format!("{lost_page}/fail"));
    let refused = http
        .post(&action)
        .header("cookie", &cookie)
        .form(&[("reason", "purged")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(app.process(&org, lost).await["status"], "queued");
    let done = http
        .post(&action)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("reason", "purged")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], lost_page.as_str());
    let p = app.process(&org, lost).await;
    assert_eq!(p["info"]["error"], "failed by an operator: purged", "{p}");
    assert_eq!(failed_by(&app, lost).await.as_deref(), Some("Ada"));
    let html = app.console_page(&cookie, &lost_page).await;
    assert!(html.contains("<dd id=\"failed-by\">Ada</dd>"), "{html}");
    assert!(
        !html.contains("id=\"fail\""),
        "no button on an ended process"
    );
    assert_eq!(
        app.wait_for_process(&org, waiting).await["status"],
        "completed"
    );
    let overview = app.console_page(&cookie, "/console/overview/live").await;
    assert_eq!(console_card(&overview, "blocked"), "0");
}
