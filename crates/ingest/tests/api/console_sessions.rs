//! Console sessions end on logout on every replica, their cookie is
//! `Secure` when configured, wrong admin tokens are throttled per client
//! address, and filters PostgreSQL cannot hold are a 400, not a 500.

use std::net::IpAddr;

use objectsync_ingest::Application;
use objectsync_testkit::{ADMIN_TOKEN, TestApp, no_redirects, spawn_app_with};
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

/// The `Set-Cookie` of a login to `app` over plain HTTP, with `headers`.
async fn login_cookie(app: &TestApp, headers: &[(&str, &str)]) -> String {
    let mut request = no_redirects().post(app.url("/console/login"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let resp = request
        .form(&[("who", "Ada"), ("token", ADMIN_TOKEN), ("next", "/console")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    resp.headers()["set-cookie"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_when_configured_or_behind_https() {
    // Off by default: over plain HTTP the cookie must come back, so it is
    // Secure only when a proxy says the request came over HTTPS.
    let app = spawn_app_with(0, |_| {}).await;
    assert!(!login_cookie(&app, &[]).await.contains("Secure"));
    let proxied = login_cookie(&app, &[("x-forwarded-proto", "https")]).await;
    assert!(proxied.ends_with("; Secure"), "{proxied}");
    drop(app);

    // Set, every cookie is Secure, whatever the request says: the login's
    // and the logout's.
    let app = spawn_app_with(0, |s| s.console.secure_cookie = true).await;
    let set = login_cookie(&app, &[]).await;
    assert!(set.ends_with("; Secure"), "{set}");
    assert!(set.contains("HttpOnly; SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let (status, page) = view(&app.address, "/console", &cookie).await;
    assert_eq!(status, 200);
    let resp = no_redirects()
        .post(app.url("/console/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cleared = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.contains("Max-Age=0") && cleared.ends_with("; Secure"),
        "{cleared}"
    );
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

/// A client whose connections come from `ip` (any of 127.0.0.0/8 reaches
/// ingest's loopback listener).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login(app: &TestApp, from: &reqwest::Client, token: &str) -> reqwest::Response {
    from.post(app.url("/console/login"))
        .form(&[("who", "Eve"), ("token", token), ("next", "/console")])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_at_the_login_form_are_throttled_per_address() {
    let app = spawn_app_with(0, |_| {}).await;
    let eve = client_from("127.0.0.1");
    // 10 wrong tokens are compared (one more for every 6 s they take),
    // then the address is refused.
    let started = std::time::Instant::now();
    let mut wrong = 0;
    let refused = loop {
        let resp = login(&app, &eve, &format!("guess{wrong}")).await;
        if resp.status() != 401 {
            break resp;
        }
        wrong += 1;
        assert!(wrong <= 20, "never throttled");
    };
    let refilled = (started.elapsed().as_secs_f64() / 6.0).ceil() as usize;
    assert!((10..=10 + refilled).contains(&wrong), "{wrong}");
    assert_eq!(refused.status(), 429);
    let after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&after), "{after}");
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("too many wrong admin tokens")
    );
    // From that address even the right token waits: it is not compared.
    let right = login(&app, &eve, ADMIN_TOKEN).await;
    assert_eq!(right.status(), 429);
    assert!(right.headers().get("set-cookie").is_none());
    // The admin API counts the same guesses.
    let api = eve
        .get(app.url("/admin/processes/stale"))
        .header("admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 429);
    // Another address logs in.
    let ada = client_from("127.0.0.2");
    let resp = login(&app, &ada, ADMIN_TOKEN).await;
    assert_eq!(resp.status(), 303);
    assert!(resp.headers().get("set-cookie").is_some());
}
