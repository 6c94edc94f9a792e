//! The console in a real browser (Debian's chromium, driven through
//! chromedriver): log in, watch a batch go through, open its process,
//! replay a dead letter, make and revoke keys. Screenshots of every page go
//! to `target/console-screenshots/`. And the refusals: no session, a form
//! without its CSRF token, a cross-site POST.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use objectsync_testkit::{ADMIN_TOKEN, Org, TestApp, no_redirects, spawn_app_with};

use crate::console_figures::Ended;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::process::{Child, Command};

/// chromedriver on a port of its own, and a headless session on it.
struct Browser {
    client: Client,
    _driver: Child,
    shots: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    async fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver runs (apt install chromium chromium-driver)");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--window-size=1280,1100"]}),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "chromedriver did not answer: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let shots =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Self {
            client,
            _driver: driver,
            shots,
        }
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// The element `css` finds, once the page has one (10 s at most).
    async fn element(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    /// The text of `css`. The overview replaces its live part every few
    /// seconds, so an element found just before that is stale when its
    /// text is asked for: then it is found again.
    async fn text(&self, css: &str) -> String {
        for _ in 0..5 {
            match self.element(css).await.text().await {
                Ok(t) => return t,
                Err(e) if e.is_stale_element_reference() => continue,
                Err(e) => panic!("{css}: {e}"),
            }
        }
        panic!("{css}: stale five times in a row")
    }

    /// Waits until the text of `css` satisfies `ok` (pages refresh or are
    /// reloaded meanwhile by `reload`).
    async fn until(&self, css: &str, reload: bool, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await
                && let Ok(t) = e.text().await
                && ok(&t)
            {
                return t;
            }
            assert!(Instant::now() < deadline, "{css} never matched");
            if reload {
                self.client.refresh().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Waits until the page's path ends with `suffix`: a click on a form's
    /// button returns before the browser has followed the POST's redirect.
    async fn until_path(&self, suffix: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.client.current_url().await.unwrap();
            if url.path().ends_with(suffix) {
                return;
            }
            assert!(Instant::now() < deadline, "still at {url}, not {suffix}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap();
    }

    async fn login(&self, app: &TestApp) {
        self.client.goto(&app.url("/console")).await.unwrap();
        // Not logged in: the login form, which comes back here.
        assert!(
            self.client
                .current_url()
                .await
                .unwrap()
                .path()
                .ends_with("/console/login")
        );
        self.shot("01-login").await;
        let form = self.client.find(Locator::Css("form.login")).await.unwrap();
        form.find(Locator::Css("input[name=who]"))
            .await
            .unwrap()
            .send_keys("Ada")
            .await
            .unwrap();
        form.find(Locator::Css("input[name=token]"))
            .await
            .unwrap()
            .send_keys(ADMIN_TOKEN)
            .await
            .unwrap();
        form.find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.until("h1", false, |t| t == "Overview").await;
    }
}

fn records(n: usize) -> Value {
    json!((0..n)
        .map(|i| json!({"identifiers": {"ext_id": format!("car-{i}")}, "attributes": {"name": format!("Car {i}")}}))
        .collect::<Vec<_>>())
}

async fn status_of(app: &TestApp, org: &Org, id: i64) -> String {
    app.process(org, id).await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_a_batch_replays_a_dead_letter_and_revokes_a_key() {
    let mut app = spawn_app_with(1, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let b = Browser::start().await;
    b.login(&app).await;

    // A batch goes through; the overview, refreshing itself, shows it.
    let id = app.upsert_accepted(&org, "vehicle", records(1000)).await;
    b.until("#applied-hour .value", false, |t| t == "1,000")
        .await;
    assert_eq!(b.text("#workers-live .value").await, "1");
    b.shot("02-overview").await;

    // Its process, from the list.
    b.client.goto(&app.url("/console/processes")).await.unwrap();
    b.shot("03-processes").await;
    b.click(&format!("a[href='/console/processes/{}/{id}']", org.id))
        .await;
    let facts = b.text("#facts").await;
    assert!(facts.contains("1,000 created"), "{facts}");
    assert!(b.text("h1").await.contains("completed"));
    b.shot("04-process").await;

    // A batch whose type vanished before it was applied is dead-lettered;
    // the type is restored and the batch replayed from the console.
    app.stop_workers().await;
    let lost = app.upsert_accepted(&org, "vehicle", records(3)).await;
    let client = app.pool.get().await.unwrap();
    client
        .execute("delete from object_types where org_id = $1", &[&org.id])
        .await
        .unwrap();
    app.start_worker().await;
    assert_eq!(app.wait_for_process(&org, lost).await["status"], "failed");
    app.define_type(&org, "vehicle", &objectsync_testkit::vehicle_definition())
        .await;
    b.client
        .goto(&app.url("/console/dead-letters"))
        .await
        .unwrap();
    let row = b
        .until("#dead-letters tbody tr", true, |t| {
            t.contains(&format!("#{lost}"))
        })
        .await;
    assert!(row.contains("to look at"), "{row}");
    b.shot("05-dead-letters").await;
    b.click("#dead-letters tbody tr td a").await;
    b.shot("06-dead-letter").await;
    b.click("#replay").await;
    b.client.accept_alert().await.unwrap();
    let h1 = b.until("h1", false, |t| t.contains("replayed")).await;
    assert!(h1.contains("replayed"), "{h1}");
    let replayed: i64 = {
        let link = b.text("h1 a").await;
        link.trim_start_matches('#').parse().unwrap()
    };
    assert!(
        replayed > lost,
        "a replay is accepted anew: {replayed} after {lost}"
    );
    assert_eq!(
        app.wait_for_process(&org, replayed).await["status"],
        "completed"
    );
    assert_eq!(status_of(&app, &org, lost).await, "failed");
    b.shot("07-replayed").await;
    // Replayed once only: another click finds it resolved.
    assert!(b.client.find(Locator::Css("#replay")).await.is_err());

    // Keys: a new one is shown once; the old one is revoked and refused.
    b.client
        .goto(&app.url(&format!("/console/organizations/{}", org.id)))
        .await
        .unwrap();
    b.click("form[action$='/keys'] button").await;
    let new_key = b.text("#new-key .secret").await;
    assert!(new_key.starts_with("osk_"), "{new_key}");
    b.shot("08-organization-new-key").await;
    let old = hex::encode(Sha256::digest(org.key.as_bytes()));
    b.click(&format!("tr[data-key='{old}'] button.danger"))
        .await;
    b.client.accept_alert().await.unwrap();
    b.until(&format!("tr[data-key='{old}']"), false, |t| {
        t.contains("revoked")
    })
    .await;
    assert_eq!(app.get(&org.key, "/v3/processes").await.status(), 401);
    assert_eq!(app.get(&new_key, "/v3/processes").await.status(), 200);
    b.shot("09-organization-revoked").await;

    b.client
        .goto(&app.url("/console/organizations"))
        .await
        .unwrap();
    b.shot("10-organizations").await;

    // A filter no index serves looks at the newest 100,000 processes for a
    // page, says so, and looks further back on request.
    Ended {
        n: 100_000,
        ..Ended::default()
    }
    .insert(&app, &org)
    .await;
    b.client
        .goto(&app.url(&format!(
            "/console/processes?org={}&object_type=garage",
            org.id
        )))
        .await
        .unwrap();
    let looked = b.text("#looked-through").await;
    assert!(looked.contains("newest 100,000"), "{looked}");
    b.shot("11-processes-looked-through").await;
    b.click("#look-further").await;
    b.until("main", false, |t| t.contains("No process matches."))
        .await;
    assert!(b.client.find(Locator::Css("#look-further")).await.is_err());

    // Forms need the session's token and the console's origin.
    let cookie = b
        .client
        .get_named_cookie("objectsync_console")
        .await
        .unwrap();
    let source = b.client.source().await.unwrap();
    let csrf = source
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let http = no_redirects();
    let new = hex::encode(Sha256::digest(new_key.as_bytes()));
    let revoke = app.url(&format!(
        "/console/organizations/{}/keys/{new}/revoke",
        org.id
    ));
    let with_cookie = format!("objectsync_console={}", cookie.value());
    let no_token = http
        .post(&revoke)
        .header("cookie", &with_cookie)
        .form(&[("nothing", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    let cross_site = http
        .post(&revoke)
        .header("cookie", &with_cookie)
        .header("origin", "http://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let no_session = http
        .post(&revoke)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(no_session.status(), 401);
    assert_eq!(
        app.get(&new_key, "/v3/processes").await.status(),
        200,
        "still live"
    );
    // The same request with both is accepted (so the refusals above were
    // for what they lacked).
    let genuine = http
        .post(&revoke)
        .header("cookie", &with_cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(genuine.status(), 303);
    assert_eq!(app.get(&new_key, "/v3/processes").await.status(), 401);

    // Logging out ends the session.
    b.click("form.logout button").await;
    b.until_path("/console/login").await;
    b.client.goto(&app.url("/console/processes")).await.unwrap();
    assert!(
        b.client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/login")
    );
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn without_an_admin_token_there_is_no_console_and_a_wrong_token_logs_nobody_in() {
    let app = spawn_app_with(0, |s| s.admin.token = None).await;
    let resp = reqwest::get(app.url("/console")).await.unwrap();
    assert_eq!(resp.status(), 404);

    let app = spawn_app_with(0, |_| {}).await;
    let http = no_redirects();
    let resp = http
        .post(app.url("/console/login"))
        .form(&[("who", "Eve"), ("token", "guess"), ("next", "/console")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    // And a login never redirects off the console.
    let resp = http
        .post(app.url("/console/login"))
        .form(&[
            ("who", "Ada"),
            ("token", ADMIN_TOKEN),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/console");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}
