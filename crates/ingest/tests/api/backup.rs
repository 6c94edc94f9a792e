//! Backup and restore as the README's "Backup and restore" section says: a
//! `pg_dump --format=custom` of a live database, restored with `pg_restore`
//! into a new one, serves the same records, processes, rejections and
//! counts through the API, and takes new batches with ids after the old.

use std::path::PathBuf;
use std::process::Command;

use objectsync_ingest::Application;
use objectsync_testkit::{Sandbox, TestApp, spawn_app_with};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Runs `program` with `args`; panics with its output unless it succeeds.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not start: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a client reads of an organization: its records, a process, its
/// rejections and the list's count.
async fn read(client: &reqwest::Client, base: &str, key: &str, process: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/v3/objects/vehicle/records?limit=1000&page_num=1&sort=asc".to_owned(),
        format!("/v3/processes/{process}"),
        format!("/v3/processes/{process}/errors?limit=50"),
        "/v3/processes?limit=50".to_owned(),
    ] {
        let resp = client
            .get(format!("{base}{path}"))
            .header("api-key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        out.push(resp.json().await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_restored_into_a_new_database_serves_the_same_records() {
    // Sweeps every second: the first drops the fresh database's empty
    // first partition, and the dump starts once it is gone.
    let app = spawn_app_with(1, |s| s.retention.sweep_secs = 1).await;
    let org = app.org_with_vehicles().await;
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "v1"}, "attributes": {"name": "one", "price": 10}},
                {"identifiers": {"ext_id": "v2"}, "attributes": {"name": "two"}},
                {"identifiers": {"ext_id": "v3"}, "attributes": {"price": "not a number"}}
            ]),
        )
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    let process = p["id"].as_i64().unwrap();
    let http = reqwest::Client::new();
    let before = read(&http, &app.address, &org.key, process).await;
    assert_eq!(before[2]["count"], 1, "one rejection: {}", before[2]);

    first_sweep_done(&app).await;

    let dump: PathBuf =
        std::env::temp_dir().join(format!("objectsync-{}.dump", uuid_like(&app.address)));
    let dump_path = dump.to_str().unwrap();
    run(
        "pg_dump",
        &[
            "--format=custom",
            "--file",
            dump_path,
            app.settings.database.url.expose_secret(),
        ],
    );
    let restored = Sandbox::create_at("restore", Some(0)).await;
    let restored_url = restored.settings.database.url.expose_secret().to_owned();
    run(
        "pg_restore",
        &["--exit-on-error", "--dbname", &restored_url, dump_path],
    );
    let _ = std::fs::remove_file(&dump);

    // Ingest on the restored database, with queues of its own.
    let mut settings = app.settings.clone();
    settings.database.url = restored.settings.database.url.clone();
    settings.amqp.prefix = restored.settings.amqp.prefix.clone();
    let cancel = CancellationToken::new();
    let ingest = Application::build(&settings, &cancel).await.unwrap();
    let base = format!("http://127.0.0.1:{}", ingest.port());
    let serving = tokio::spawn(ingest.run_until(cancel.clone()));
    let after = read(&http, &base, &org.key, process).await;
    assert_eq!(after, before);
    // It accepts batches, numbered after those it restored.
    let resp = http
        .post(format!("{base}/v3/objects/vehicle/batch/upsert"))
        .header("api-key", &org.key)
        .json(&json!({"records": [{"identifiers": {"ext_id": "v4"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert!(body["processId"].as_i64().unwrap() > process, "{body}");
    cancel.cancel();
    let _ = serving.await;
}

/// Waits (30 s at most) until the sweeper has dropped the fresh database's
/// empty first partition. The sweeper drops no partition while a dump runs,
/// but one that judged before the dump connected could drop it under the
/// dump's start; with nothing left to expire, the dump below is certain.
async fn first_sweep_done(app: &TestApp) {
    let client = app.pool.get().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let gone: bool = client
            .query_one("select to_regclass('processes_p0') is null", &[])
            .await
            .unwrap()
            .get(0);
        if gone {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processes_p0 still there after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A name part unique to this test run (the app's port).
fn uuid_like(address: &str) -> String {
    address.rsplit(':').next().unwrap_or("0").to_owned()
}
