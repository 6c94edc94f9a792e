//! Rolling upgrades: the previous release and this one run side by side on
//! one database and one set of queues (ARCHITECTURE.md, Upgrades). The
//! previous release's ingest and worker, built from its commit (see
//! `objectsync_testkit::previous`), migrate and serve a fresh database;
//! this release's migrations are applied while they run; then this
//! release's ingest feeds the old worker, and the old ingest feeds this
//! release's worker, a batch of each kind (upsert, associations, delete)
//! each way.
//!
//! Ignored by default: the first run builds the previous release (minutes
//! on two cores), so `.ci/run` runs it on its own after the other tests.

use std::time::{Duration, Instant};

use objectsync_infra::settings::LimitSettings;
use objectsync_testkit::previous::{self, Release};
use objectsync_testkit::services::{Spawner, terminate};
use objectsync_testkit::{
    ADMIN_TOKEN, Sandbox, garage_definition, spawn_app_in, vehicle_definition,
};
use serde_json::{Value, json};

/// The previous release: every change must run beside it. Move it forward
/// to the newest release commit when one is cut.
const PREVIOUS_RELEASE: &str = "de60395";

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An ingest (either release) over plain HTTP: the old one answers by its
/// own contract, not this release's document.
struct Ingest {
    base: String,
    http: reqwest::Client,
}

impl Ingest {
    fn at(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self.http.get(format!("{}/readyz", self.base)).send().await;
            if answer.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "{} never ready", self.base);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("ingest answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("admin-token", ADMIN_TOKEN)
            .json(&body);
        let (status, body) = self.send(req).await;
        assert!(status == 200 || status == 201, "{path}: {status} {body}");
        body
    }

    /// Posts a batch of `kind` (`upsert` or `delete`) and waits until its
    /// process ends, polling this ingest; the process as it ends.
    async fn batch(&self, key: &str, object_type: &str, kind: &str, body: Value) -> Value {
        let url = format!("{}/v3/objects/{object_type}/batch/{kind}", self.base);
        let (status, accepted) = self
            .send(self.http.post(url).header("api-key", key).json(&body))
            .await;
        assert_eq!(status, 202, "{} {kind}: {accepted}", self.base);
        let id = accepted["processId"].as_i64().expect("processId");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let url = format!("{}/v3/processes/{id}", self.base);
            let (status, p) = self.send(self.http.get(url).header("api-key", key)).await;
            assert_eq!(status, 200, "{p}");
            if p["status"] == "completed" || p["status"] == "failed" {
                assert_eq!(
                    p["status"], "completed",
                    "{kind} through {}: {p}",
                    self.base
                );
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "process {id} still {}",
                p["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One batch of each kind for the records named `{tag}-…`: garage g1
    /// and vehicles v1, v2 upserted, v1 linked to g1, v2 deleted.
    async fn each_kind(&self, key: &str, tag: &str) {
        let g1 = format!("{tag}-g1");
        let (v1, v2) = (format!("{tag}-v1"), format!("{tag}-v2"));
        self.batch(
            key,
            "garage",
            "upsert",
            json!({"records": [{"identifiers": {"ext_id": g1}, "attributes": {"name": "North"}}]}),
        )
        .await;
        let p = self
            .batch(
                key,
                "vehicle",
                "upsert",
                json!({"records": [
                {"identifiers": {"ext_id": v1}, "attributes": {"name": "One", "price": 1}},
                {"identifiers": {"ext_id": v2}, "attributes": {"name": "Two"}}]}),
            )
            .await;
        assert_eq!(p["info"]["records"]["created"], 2, "{p}");
        let p = self
            .batch(
                key,
                "vehicle",
                "upsert",
                json!({"records": [
                {"identifiers": {"ext_id": v1}, "attributes": {"price": 2},
                 "associations": [{"object_type": "garage",
                                   "records": [{"identifiers": {"ext_id": g1}}]}]}]}),
            )
            .await;
        assert_eq!(p["info"]["records"]["updated"], 1, "{p}");
        let p = self
            .batch(
                key,
                "vehicle",
                "delete",
                json!({"identifiers": {"ext_ids": [v2]}}),
            )
            .await;
        assert_eq!(p["info"]["records"]["deleted"], 1, "{p}");
    }

    /// What `{tag}-…`'s batches left: v1 at price 2 linked to g1, no v2.
    async fn check(&self, key: &str, tag: &str) {
        let url = format!(
            "{}/v3/objects/vehicle/records?limit=1000&page_num=1&association=true",
            self.base
        );
        let (status, list) = self.send(self.http.get(url).header("api-key", key)).await;
        assert_eq!(status, 200, "{list}");
        let mine: Vec<&Value> = list["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter(|r| {
                r["identifiers"]["ext_id"]
                    .as_str()
                    .is_some_and(|e| e.starts_with(tag))
            })
            .collect();
        assert_eq!(mine.len(), 1, "{tag}: {list}");
        assert_eq!(mine[0]["identifiers"]["ext_id"], format!("{tag}-v1"));
        assert_eq!(mine[0]["attributes"]["price"], 2);
        let linked = &mine[0]["associations"][0];
        assert_eq!(linked["object_type"], "garage", "{tag}: {list}");
        assert_eq!(
            linked["records"].as_array().map(Vec::len),
            Some(1),
            "{tag}: {list}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "builds the previous release once (minutes); .ci/run runs it"]
async fn the_previous_release_and_this_one_run_side_by_side_both_ways() {
    let old: Release = tokio::task::spawn_blocking(|| previous::build(PREVIOUS_RELEASE))
        .await
        .unwrap();
    let mut sandbox = Sandbox::create_unmigrated("upgrade").await;
    sandbox.settings.limits = LimitSettings::UNLIMITED;
    let url = sandbox.settings.database.url.expose_secret().to_owned();
    let logs = std::env::temp_dir().join(format!("objectsync-upgrade-{}", sandbox.database()));
    let mut spawner = Spawner::new(&sandbox.settings, logs.clone(), "info").unwrap();
    let (old_port, worker_port) = (free_port(), free_port());

    // The previous release on its own schema, as before the upgrade.
    let migrated = std::process::Command::new(&old.ingest)
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let old_ingest = spawner
        .spawn_program(
            &old.ingest,
            &["serve"],
            "old-ingest",
            &[
                ("OBJECTSYNC__HTTP__PORT", &old_port.to_string()),
                ("OBJECTSYNC__ADMIN__TOKEN", ADMIN_TOKEN),
            ],
        )
        .unwrap();
    let old_worker = spawner
        .spawn_program(
            &old.worker,
            &[],
            "old-worker",
            &[
                ("OBJECTSYNC__HTTP__PORT", &worker_port.to_string()),
                ("OBJECTSYNC__WORKER__SHUTDOWN_GRACE_SECS", "5"),
            ],
        )
        .unwrap();
    let old_api = Ingest::at(format!("http://127.0.0.1:{old_port}"));
    old_api.ready().await;
    let org = old_api
        .admin(
            reqwest::Method::POST,
            "/admin/organizations",
            json!({"name": "Upgraders", "custom_objects_enabled": true}),
        )
        .await;
    let (org_id, key) = (
        org["id"].as_i64().unwrap(),
        org["api_key"].as_str().unwrap().to_owned(),
    );
    for (name, definition) in [
        ("vehicle", vehicle_definition()),
        ("garage", garage_definition()),
    ] {
        let path = format!("/admin/organizations/{org_id}/objects/{name}");
        old_api.admin(reqwest::Method::PUT, &path, definition).await;
    }
    old_api.each_kind(&key, "old-old").await;

    // Expand: this release's migrations, under the running old release.
    objectsync_infra::db::migrate(&url)
        .await
        .expect("this release's migrations");

    // This release's ingest, the old worker (the only one consuming).
    let mut app = spawn_app_in(sandbox, 0, |s| s.limits = LimitSettings::UNLIMITED).await;
    let current = Ingest::at(app.address.clone());
    current.each_kind(&key, "new-ingest").await;

    // The old ingest, this release's worker (the old one stopped first).
    let mut old_worker = [old_worker];
    let problems = terminate(&mut old_worker, Duration::from_secs(10)).await;
    assert!(problems.is_empty(), "old worker: {problems:?}");
    app.start_worker().await;
    old_api.each_kind(&key, "new-worker").await;

    for tag in ["old-old", "new-ingest", "new-worker"] {
        current.check(&key, tag).await;
        old_api.check(&key, tag).await;
    }
    let problems = terminate(&mut [old_ingest], Duration::from_secs(10)).await;
    assert!(problems.is_empty(), "old ingest: {problems:?}");
    // Neither old binary logged an error on this release's schema and queues.
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        let log = std::fs::read_to_string(&path).unwrap();
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("\"level\":\"ERROR\""))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
    let _ = std::fs::remove_dir_all(&logs);
}

/// The other half of running side by side: this release, restarted while
/// the next one has already migrated the database, starts on it as it is
/// instead of refusing migrations it does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_release_starts_on_a_schema_a_newer_release_migrated() {
    let sandbox = Sandbox::create("upgrade").await;
    let url = sandbox.settings.database.url.expose_secret().to_owned();
    let newer = objectsync_infra::db::latest_migration() + 1;
    sandbox
        .pool
        .get()
        .await
        .unwrap()
        .execute(
            "insert into refinery_schema_history (version, name, applied_on, checksum)
             values ($1, 'from_the_next_release', now()::text, '0')",
            &[&newer],
        )
        .await
        .unwrap();
    let applied = objectsync_infra::db::migrate(&url).await.expect("migrate");
    assert_eq!(applied, 0);
    // Ingest (which migrates as it starts) and a worker (which waits for
    // its schema) both start and apply a batch.
    let app = spawn_app_in(sandbox, 1, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let p = app
        .upsert_and_wait(&org, "vehicle", json!([{"identifiers": {"ext_id": "v1"}}]))
        .await;
    assert_eq!(p["status"], "completed", "{p}");
}
