//! Webhooks through the admin API and the console: what each endpoint
//! answers, which URLs are refused, and the organization's page (register,
//! secret shown once, delete, failed deliveries resent).

use objectsync_testkit::{TestApp, no_redirects, spawn_app_with};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_registered_listed_and_deleted() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.create_org(true).await;
    let hooks = format!("/admin/organizations/{}/webhooks", org.id);

    let url = "https://example.com/hooks/objectsync";
    let (status, created) = app
        .admin_call(Method::POST, &hooks, Some(json!({"url": url})))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["url"], url);
    let secret = created["secret"].as_str().unwrap();
    // A Standard Webhooks secret: whsec_ and a key of 24 to 64 bytes.
    let key = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    let webhook = standard_key_len(key);
    assert!((24..=64).contains(&webhook), "{webhook} bytes");
    let id = created["id"].as_i64().unwrap();

    let (status, listed) = app.admin_call(Method::GET, &hooks, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["url"], url);
    assert!(
        listed[0].get("secret").is_none(),
        "the secret is shown once"
    );

    let one = format!("{hooks}/{id}");
    assert_eq!(app.admin_call(Method::DELETE, &one, None).await.0, 204);
    let (status, gone) = app.admin_call(Method::DELETE, &one, None).await;
    assert_eq!(status, 404, "{gone}");
    assert_eq!(gone["code"], "document_not_found");
    let (_, listed) = app.admin_call(Method::GET, &hooks, None).await;
    assert_eq!(listed, json!([]));

    // Unknown organization; another organization's webhook.
    let (status, _) = app
        .admin_call(
            Method::POST,
            "/admin/organizations/999999/webhooks",
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        app.admin_call(Method::GET, "/admin/organizations/999999/webhooks", None)
            .await
            .0,
        404
    );
    let (_, created) = app
        .admin_call(Method::POST, &hooks, Some(json!({"url": url})))
        .await;
    let other = app.create_org(true).await;
    let path = format!(
        "/admin/organizations/{}/webhooks/{}",
        other.id, created["id"]
    );
    assert_eq!(app.admin_call(Method::DELETE, &path, None).await.0, 404);
}

fn standard_key_len(b64: &str) -> usize {
    // base64 without padding characters: 3 bytes for every 4 characters.
    let pad = b64.chars().rev().take_while(|c| *c == '=').count();
    b64.len() / 4 * 3 - pad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhook_urls_are_a_400_naming_the_field() {
    let app = spawn_app_with(0, |s| s.webhooks.allow_private_addresses = false).await;
    let org = app.create_org(true).await;
    let hooks = format!("/admin/organizations/{}/webhooks", org.id);
    for (body, says) in [
        (
            json!({"url": "ftp://example.com/x"}),
            "url: must be http or https",
        ),
        (json!({"url": "not a url"}), "url: is not an absolute URL"),
        (
            json!({"url": "http://127.0.0.1:9000/x"}),
            "private or local address",
        ),
        (
            json!({"url": "http://169.254.169.254/latest"}),
            "private or local address",
        ),
        (json!({"url": "http://[::1]/x"}), "private or local address"),
        (json!({"url": "https://e.com", "events": ["x"]}), "events"),
        (json!({}), "url"),
    ] {
        let (status, answer) = app
            .admin_call(Method::POST, &hooks, Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    // A public address is fine.
    let (status, _) = app
        .admin_call(
            Method::POST,
            &hooks,
            Some(json!({"url": "https://93.184.216.34/x"})),
        )
        .await;
    assert_eq!(status, 201);
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token");
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_registers_deletes_and_resends() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.create_org(true).await;
    let cookie = app.console_cookie().await;
    let page_path = format!("/console/organizations/{}", org.id);
    let page = app.console_page(&cookie, &page_path).await;
    assert!(page.contains("Webhooks"), "a webhooks section");
    assert!(page.contains("None registered."));

    // Register: the secret is on the answer, this once.
    let resp = no_redirects()
        .post(app.url(&format!("{page_path}/webhooks")))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("url", "https://example.com/h"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let shown = resp.text().await.unwrap();
    assert!(shown.contains("new-webhook-secret"), "{shown}");
    assert!(shown.contains("whsec_"));
    let page = app.console_page(&cookie, &page_path).await;
    assert!(page.contains("https://example.com/h"));
    assert!(!page.contains("whsec_"), "shown once only");
    let (_, listed) = app
        .admin_call(
            Method::GET,
            &format!("/admin/organizations/{}/webhooks", org.id),
            None,
        )
        .await;
    let id = listed[0]["id"].as_i64().unwrap();

    // A bad URL is refused, saying why.
    let resp = no_redirects()
        .post(app.url(&format!("{page_path}/webhooks")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&page).as_str()), ("url", "ftp://x/y")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("http or https"));

    // A failed delivery is listed with its last error, and resent.
    let client = app.pool.get().await.unwrap();
    let process = app_process(&app, org.id).await;
    let delivery: i64 = client
        .query_one(
            "insert into webhook_deliveries
                 (webhook_id, event_id, org_id, process_id, attempts, last_error, failed_at)
             values ($1, gen_random_uuid(), $2, $3, 31, 'HTTP 502 Bad Gateway: down', now())
             returning id",
            &[&id, &org.id, &process],
        )
        .await
        .unwrap()
        .get(0);
    let page = app.console_page(&cookie, &page_path).await;
    assert!(page.contains("failed-deliveries"), "{page}");
    assert!(page.contains("HTTP 502 Bad Gateway: down"));
    let resend = format!("{page_path}/deliveries/{delivery}/resend");
    let resp = no_redirects()
        .post(app.url(&resend))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let row = client
        .query_one(
            "select failed_at is null, attempts from webhook_deliveries where id = $1",
            &[&delivery],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "pending again");
    assert_eq!(row.get::<_, i32>(1), 0, "with a fresh set of retries");
    let page = app.console_page(&cookie, &page_path).await;
    assert!(!page.contains("HTTP 502 Bad Gateway: down"));

    // Delete.
    let resp = no_redirects()
        .post(app.url(&format!("{page_path}/webhooks/{id}/delete")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let page = app.console_page(&cookie, &page_path).await;
    assert!(page.contains("None registered."));
}

/// A process of organization `org`, for a delivery to name.
async fn app_process(app: &TestApp, org: i64) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one(
            "insert into processes (org_id, name, object_type, records_total)
             values ($1, 'OBJECT_RECORDS_UPSERT', 'vehicle', 1) returning id",
            &[&org],
        )
        .await
        .unwrap()
        .get(0)
}
