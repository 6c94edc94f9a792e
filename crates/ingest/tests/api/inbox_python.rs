//! The inbox from a producer that is not ours: Python with `pika` (the
//! script beside this file), run as a child process. CI installs pika
//! (`.ci/run`); elsewhere, `pip install pika`.

use objectsync_testkit::spawn_app;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_producer_with_pika_is_answered_and_its_batch_applied() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/inbox_producer.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .env("AMQP_URL", app.settings.amqp.urls[0].expose_secret())
        .env("INBOX_EXCHANGE", app.topology().inbox_exchange)
        .env("API_KEY", &org.key)
        .env("OBJECT_TYPE", "vehicle")
        .output()
        .await
        .expect("the test needs python3 on PATH, with pika: pip install pika");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python producer failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON answer a line"))
        .collect();
    assert_eq!(answers.len(), 2, "{stdout}");
    for a in &answers {
        assert_eq!(a["correlation_id"], a["sent_correlation_id"]);
    }
    let (accepted, refused) = (&answers[0], &answers[1]);
    assert_eq!(accepted["status"], 202, "{accepted}");
    let id = accepted["body"]["processId"].as_i64().expect("processId");
    assert_eq!(app.wait_for_process(&org, id).await["status"], "completed");
    let records = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(records["py-1"]["attributes"]["name"], "From Python");
    assert_eq!(refused["status"], 401, "{refused}");
    assert_eq!(refused["body"]["code"], "unauthorized");
    assert_eq!(app.process_count().await, 1);
}

/// The README's Rust producer is the example that compiles.
#[test]
fn the_readme_shows_the_rust_producer_as_it_compiles() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example =
        std::fs::read_to_string(format!("{root}/crates/ingest/examples/inbox_producer.rs"))
            .unwrap();
    let code = &example[example.find("use std::time::Duration;").unwrap()..];
    assert!(
        readme.contains(&format!("```rust\n{code}```")),
        "README's Producers over AMQP must show crates/ingest/examples/inbox_producer.rs"
    );
}
