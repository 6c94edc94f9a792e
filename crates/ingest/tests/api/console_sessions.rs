//! Console sessions end on logout on every replica, and filters PostgreSQL
//! cannot hold are a 400, not a 500.

use objectsync_ingest::Application;
use objectsync_testkit::{TestApp, no_redirects, spawn_app_with};
use tokio_util::sync::CancellationToken;

/// A second ingest on the same database and queues: another replica.
async fn second_replica(app: &TestApp) -> (String, CancellationToken) {
    let cancel = CancellationToken::new();
    let replica = Application::build(&app.settings, &cancel)
        .await
        .expect("a second ingest builds");
    let address = format!("http://127.0.0.1:{}", replica.port());
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            let _ = replica.run_until(cancel).await;
        }
    });
    (address, cancel)
}

/// The status of `GET {base}{path}` with `cookie`, and where it redirects.
async fn view(base: &str, path: &str, cookie: &str) -> (u16, String) {
    let resp = no_redirects()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let status = resp.status().as_u16();
    if status == 200 {
        return (status, resp.text().await.unwrap());
    }
    (status, location)
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token");
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_ends_the_session_on_every_replica() {
    let app = spawn_app_with(0, |_| {}).await;
    let (other, stop_other) = second_replica(&app).await;
    let cookie = app.console_cookie().await;
    let (status, page) = view(&app.address, "/console", &cookie).await;
    assert_eq!(status, 200);
    assert_eq!(view(&other, "/console", &cookie).await.0, 200);

    let resp = no_redirects()
        .post(app.url("/console/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );

    // The old cookie, kept, opens nothing any more, on either replica.
    for base in [&app.address, &other] {
        let (status, location) = view(base, "/console/processes", &cookie).await;
        assert_eq!(status, 303, "{base}");
        assert!(location.starts_with("/console/login"), "{location}");
    }
    let resp = no_redirects()
        .post(format!("{other}/console/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Another login of the same operator is a session of its own.
    let again = app.console_cookie().await;
    assert_ne!(again, cookie);
    assert_eq!(view(&other, "/console", &again).await.0, 200);
    stop_other.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_filters_postgres_cannot_hold_are_a_400() {
    let app = spawn_app_with(0, |_| {}).await;
    let cookie = app.console_cookie().await;
    for query in [
        "object_type=%00",
        "object_type=a%00b&org=1",
        "object_type=%00&status=queued",
        "object_type=%00&org=1&status=failed",
        "object_type=%FF",
        "object_type=Vehicle",
    ] {
        let (status, page) = view(
            &app.address,
            &format!("/console/processes?{query}"),
            &cookie,
        )
        .await;
        assert_eq!(status, 400, "{query}: {page}");
    }
    let resp = no_redirects()
        .get(app.url("/console/processes?object_type=%00"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("is not a type name"));
    for query in [
        "object_type=vehicle",
        "object_type=vehicle&org=1&status=queued",
    ] {
        let (status, _) = view(
            &app.address,
            &format!("/console/processes?{query}"),
            &cookie,
        )
        .await;
        assert_eq!(status, 200, "{query}");
    }
}
