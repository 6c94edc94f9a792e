//! The admin API (SPEC §3).

use objectsync_testkit::{ADMIN_TOKEN, garage_definition, spawn_app_with, vehicle_definition};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_required_and_no_token_means_disabled() {
    let app = spawn_app_with(0, |_| {}).await;
    let body = json!({"name": "Acme", "custom_objects_enabled": true});
    for token in [None, Some("wrong")] {
        let mut req = app.client.post(app.url("/admin/organizations")).json(&body);
        if let Some(t) = token {
            req = req.header("admin-token", t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], "unauthorized");
    }
    drop(app);

    let app = spawn_app_with(0, |s| s.admin.token = None).await;
    let resp = app
        .client
        .post(app.url("/admin/organizations"))
        .header("admin-token", ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_keys_and_definitions() {
    let app = spawn_app_with(0, |_| {}).await;
    let resp = app
        .admin_post(
            "/admin/organizations",
            &json!({"name": "Acme", "custom_objects_enabled": true}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let org: Value = resp.json().await.unwrap();
    assert!(org["id"].as_i64().unwrap() > 0);
    assert_eq!(org["name"], "Acme");
    assert!(org["api_key"].as_str().unwrap().len() > 20);
    let org_id = org["id"].as_i64().unwrap();

    let resp = app
        .admin_post("/admin/organizations/999999/api-keys", &json!({}))
        .await;
    assert_eq!(resp.status(), 404);

    let path = |t: &str| format!("/admin/organizations/{org_id}/objects/{t}");
    let resp = app.admin_put(&path("vehicle"), &vehicle_definition()).await;
    assert_eq!(resp.status(), 200);
    let stored: Value = resp.json().await.unwrap();
    assert_eq!(stored["object_type"], "vehicle");
    assert_eq!(stored["attributes"].as_array().unwrap().len(), 7);
    assert_eq!(
        stored["attributes"][5]["options"][0],
        json!({"key": "red", "label": "Red"})
    );

    let resp = app.admin_put(&path("garage"), &garage_definition()).await;
    assert_eq!(resp.status(), 200);
    let listed: Value = app
        .client
        .get(app.url(&format!("/admin/organizations/{org_id}/objects")))
        .header("admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    // Associations are symmetric: defined on garage, visible on vehicle.
    assert_eq!(listed[0]["object_type"], "garage");
    assert_eq!(listed[0]["associations"], json!(["vehicle"]));
    assert_eq!(listed[1]["associations"], json!(["garage"]));

    // Replacing a definition without `associations` keeps them.
    let mut v2 = vehicle_definition();
    v2["label"] = json!("Cars");
    let stored: Value = app
        .admin_put(&path("vehicle"), &v2)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["label"], "Cars");
    assert_eq!(stored["associations"], json!(["garage"]));
    // An empty list removes them, on both sides.
    v2["associations"] = json!([]);
    let stored: Value = app
        .admin_put(&path("vehicle"), &v2)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["associations"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_definitions_name_the_field() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.create_org(true).await;
    let path = |t: &str| format!("/admin/organizations/{}/objects/{t}", org.id);
    let text = json!({"key": "name", "label": "Name", "type": "text"});
    let cases = [
        ("vehicle", json!({"attributes": [text]}), "label"),
        (
            "vehicle",
            json!({"label": "V", "attributes": []}),
            "attributes",
        ),
        (
            "vehicle",
            json!({"label": "V", "attributes": [{"key": "n", "label": "N", "type": "number"}]}),
            "attributes[0].type",
        ),
        (
            "vehicle",
            json!({"label": "V", "attributes": [text, {"key": "Bad", "label": "B", "type": "text"}]}),
            "attributes[1].key",
        ),
        (
            "vehicle",
            json!({"label": "V", "attributes": [text, {"key": "c", "label": "C", "type": "category"}]}),
            "attributes[1].options",
        ),
        (
            "vehicle",
            json!({"label": "V", "attributes": [text], "associations": ["garage"]}),
            "associations[0]",
        ),
        (
            "Vehicle",
            json!({"label": "V", "attributes": [text]}),
            "object_type",
        ),
    ];
    for (name, body, field) in cases {
        let resp = app.admin_put(&path(name), &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let b: Value = resp.json().await.unwrap();
        assert_eq!(b["code"], "invalid_parameter");
        assert!(
            b["message"].as_str().unwrap().starts_with(field),
            "{field}: {b}"
        );
    }
    let resp = app
        .client
        .put(app.url(&path("vehicle")))
        .header("admin-token", ADMIN_TOKEN)
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_association_cap_counts_both_ends() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.create_org(true).await;
    let def = |assoc: Vec<String>| {
        json!({"label": "T", "attributes": [{"key": "name", "label": "Name", "type": "text"}],
               "associations": assoc})
    };
    app.define_type(&org, "hub", &def(vec![])).await;
    for i in 0..10 {
        app.define_type(&org, &format!("spoke{i}"), &def(vec!["hub".into()]))
            .await;
    }
    let resp = app
        .admin_put(
            &format!("/admin/organizations/{}/objects/spoke10", org.id),
            &def(vec!["hub".into()]),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let b: Value = resp.json().await.unwrap();
    assert!(b["message"].as_str().unwrap().contains("'hub'"), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_admin_tokens_are_throttled_per_client_address() {
    let app = spawn_app_with(0, |_| {}).await;
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let (eve, ada) = (from("127.0.0.1"), from("127.0.0.3"));
    let stale = app.url("/admin/processes/stale");
    let call = |client: &reqwest::Client, token: &str| {
        client
            .get(&stale)
            .header("admin-token", token.to_owned())
            .send()
    };
    // 30 wrong tokens at once: 10 are compared and refused (one more for
    // every 6 s they take to arrive), the rest are not even compared.
    let started = std::time::Instant::now();
    let answers =
        futures_util::future::join_all((0..30).map(|i| call(&eve, &format!("guess{i}")))).await;
    let refilled = (started.elapsed().as_secs_f64() / 6.0).ceil() as usize;
    let statuses: Vec<u16> = answers
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    let compared = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        (10..=10 + refilled).contains(&compared),
        "{compared}: {statuses:?}"
    );
    assert_eq!(
        compared + statuses.iter().filter(|s| **s == 429).count(),
        30
    );

    // Checked against the contract: 429 with Retry-After, even with the right token.
    let resp = app
        .client
        .get(&stale)
        .header("admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "too_many_requests");

    // The right token from another address works.
    assert_eq!(call(&ada, ADMIN_TOKEN).await.unwrap().status(), 200);
    // A missing header is not a guess.
    let bare = ada.get(&stale).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    assert_eq!(call(&ada, ADMIN_TOKEN).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_id_is_digits_only() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.create_org(true).await;
    for raw in [format!("+{}", org.id), format!("-{}", org.id), " 1".into()] {
        let resp = app
            .admin_post(&format!("/admin/organizations/{raw}/api-keys"), &json!({}))
            .await;
        assert_eq!(resp.status(), 400, "{raw}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "invalid_parameter", "{raw}: {body}");
    }
}

/// `objectsync-ingest admin … | head -1`: the reader goes away before the
/// answer is printed, and the command ends quietly instead of panicking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_cli_ends_quietly_when_its_reader_goes_away() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_objectsync-ingest"))
        .args(["admin", "list-types", "--org", &org.id.to_string()])
        .env("DATABASE_URL", app.settings.database.url.expose_secret())
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the command writes its answer.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
