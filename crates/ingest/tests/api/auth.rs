//! `api-key` and the custom objects flag, on every `/v3` endpoint.

use objectsync_testkit::spawn_app_with;
use serde_json::{Value, json};

const ENDPOINTS: [(&str, &str); 7] = [
    ("POST", "/v3/objects/vehicle/batch/upsert"),
    ("POST", "/v3/objects/vehicle/batch/delete"),
    ("GET", "/v3/objects/vehicle/associated-records?ext_id=v1"),
    ("GET", "/v3/objects/vehicle/records?limit=10&page_num=1"),
    ("GET", "/v3/processes"),
    ("GET", "/v3/processes/1"),
    ("GET", "/v3/processes/1/errors"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unknown_keys_get_401_and_disabled_orgs_403() {
    let app = spawn_app_with(0, |_| {}).await;
    let disabled = app.create_org(false).await;
    let body = json!({"records": [{"identifiers": {"ext_id": "v1"}}]}).to_string();
    for (method, path) in ENDPOINTS {
        for (key, status, code) in [
            (None, 401, "unauthorized"),
            (Some("osk_not_a_key"), 401, "unauthorized"),
            (Some(disabled.key.as_str()), 403, "permission_denied"),
        ] {
            let mut req = match method {
                "POST" => app.client.post(app.url(path)).body(body.clone()),
                _ => app.client.get(app.url(path)),
            };
            if let Some(key) = key {
                req = req.header("api-key", key);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), status, "{method} {path} {key:?}");
            let b: Value = resp.json().await.unwrap();
            assert_eq!(b["code"], code);
            if status == 403 {
                assert_eq!(
                    b["message"],
                    "Custom objects are not available on this account"
                );
            }
        }
    }
    assert_eq!(app.process_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_key_works_and_keys_are_stored_hashed() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let resp = app
        .admin_post(
            &format!("/admin/organizations/{}/api-keys", org.id),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let key = resp.json::<Value>().await.unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(key, org.key);
    assert_eq!(app.get(&key, "/v3/processes").await.status(), 200);
    let client = app.pool.get().await.unwrap();
    let leaked: i64 = client
        .query_one(
            "select count(*) from api_keys where encode(key_hash, 'escape') like '%' || $1 || '%'",
            &[&&key[4..20]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0);
}
