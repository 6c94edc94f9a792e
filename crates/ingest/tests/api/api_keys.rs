//! API keys through the admin API and the CLI: listed newest first, named
//! by the hex of their SHA-256 and never shown again, with when each was
//! last used; revoked one at a time, after which the key gets 401 and the
//! organization's other keys still work.

use std::time::{Duration, Instant};

use objectsync_testkit::{Org, TestApp, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What `printf %s "$KEY" | sha256sum` prints: a key's id.
fn id_of(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

async fn records_status(app: &TestApp, key: &str) -> u16 {
    app.get(key, "/v3/objects/vehicle/records?limit=1&page_num=1")
        .await
        .status()
        .as_u16()
}

async fn second_key(app: &TestApp, org: &Org) -> String {
    let path = format!("/admin/organizations/{}/api-keys", org.id);
    let (status, created) = app.admin_call(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, 201, "{created}");
    created["api_key"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_listed_revoked_and_refused_from_then_on() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let keys = format!("/admin/organizations/{}/api-keys", org.id);
    let second = second_key(&app, &org).await;

    let (status, listed) = app.admin_call(Method::GET, &keys, None).await;
    assert_eq!(status, 200, "{listed}");
    let ids: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["id"])
        .collect();
    assert_eq!(ids, [&json!(id_of(&second)), &json!(id_of(&org.key))]);
    assert_eq!(listed[0]["hint"], second[second.len() - 4..]);
    assert!(listed[0]["created_at"].is_string(), "{listed}");
    assert!(listed[0]["revoked_at"].is_null() && listed[1]["revoked_at"].is_null());
    assert!(listed[0]["last_used_at"].is_null() && listed[1]["last_used_at"].is_null());
    let text = listed.to_string();
    assert!(
        !text.contains(&second) && !text.contains(&org.key),
        "{text}"
    );

    // The first key is used: that shows (written in the background; a
    // write that failed is tried again by the next request), and the
    // unused one stays without a use.
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        assert_eq!(records_status(&app, &org.key).await, 200);
        let (_, listed) = app.admin_call(Method::GET, &keys, None).await;
        if listed[1]["last_used_at"].is_string() {
            break listed;
        }
        assert!(Instant::now() < deadline, "no use recorded: {listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(listed[0]["last_used_at"].is_null(), "{listed}");

    let first = format!("{keys}/{}", id_of(&org.key));
    let (status, body) = app.admin_call(Method::DELETE, &first, None).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(records_status(&app, &org.key).await, 401);
    assert_eq!(records_status(&app, &second).await, 200);
    let (_, listed) = app.admin_call(Method::GET, &keys, None).await;
    assert!(listed[0]["revoked_at"].is_null(), "{listed}");
    assert!(listed[1]["revoked_at"].is_string(), "{listed}");

    // Revoked already: no live key by that id.
    let (status, body) = app.admin_call(Method::DELETE, &first, None).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("no live key"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_id_is_a_400_and_another_organization_s_key_is_not_found() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let other = app.create_org(true).await;
    for bad in ["not-hex", "abcd", &"0".repeat(66)] {
        let path = format!("/admin/organizations/{}/api-keys/{bad}", org.id);
        let (status, body) = app.admin_call(Method::DELETE, &path, None).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("key_id"),
            "{body}"
        );
    }
    // The other organization's key, named under this one: refused, and
    // the key goes on working.
    let path = format!(
        "/admin/organizations/{}/api-keys/{}",
        org.id,
        id_of(&other.key)
    );
    assert_eq!(app.admin_call(Method::DELETE, &path, None).await.0, 404);
    assert_eq!(
        app.get(&other.key, "/v3/processes?limit=1").await.status(),
        200
    );
    for (method, path) in [
        (
            Method::GET,
            "/admin/organizations/999999/api-keys".to_owned(),
        ),
        (
            Method::DELETE,
            format!("/admin/organizations/999999/api-keys/{}", id_of(&org.key)),
        ),
    ] {
        let (status, body) = app.admin_call(method, &path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("999999"),
            "{body}"
        );
    }
}

/// `objectsync-ingest admin …` as an operator runs it: the JSON it prints.
fn cli(app: &TestApp, args: &[&str]) -> (bool, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_objectsync-ingest"))
        .arg("admin")
        .args(args)
        .env("DATABASE_URL", app.settings.database.url.expose_secret())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stderr,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_and_revokes_keys() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let second = second_key(&app, &org).await;
    let org_arg = org.id.to_string();
    let (ok, listed, err) =
        tokio::task::block_in_place(|| cli(&app, &["list-keys", "--org", &org_arg]));
    assert!(ok, "{err}");
    assert_eq!(listed[0]["id"], id_of(&second), "{listed}");
    assert_eq!(listed[1]["id"], id_of(&org.key), "{listed}");

    let id = id_of(&second);
    let (ok, revoked, err) = tokio::task::block_in_place(|| {
        cli(&app, &["revoke-key", "--org", &org_arg, "--key-id", &id])
    });
    assert!(ok, "{err}");
    assert_eq!(revoked, json!({"revoked": id}));
    assert_eq!(records_status(&app, &second).await, 401);
    assert_eq!(records_status(&app, &org.key).await, 200);

    let (ok, _, err) = tokio::task::block_in_place(|| {
        cli(&app, &["revoke-key", "--org", &org_arg, "--key-id", &id])
    });
    assert!(!ok);
    assert!(err.contains("no live key"), "{err}");
}
