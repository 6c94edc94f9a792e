//! RabbitMQ over TLS (`amqps://` with RabbitMQ's URI parameters) and a list
//! of nodes, against a TLS-only scratch node (see
//! `objectsync_testkit::rabbitmq`) that the tests of this binary share: a
//! node takes seconds to start.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use objectsync_infra::settings::AmqpSettings;
use objectsync_infra::{Broker, Role, Settings, amqp};
use objectsync_testkit::rabbitmq::{Listener, ScratchNode};
use objectsync_testkit::spawn_app_with;
use serde_json::{Value, json};

static NODE: OnceLock<ScratchNode> = OnceLock::new();

/// The shared TLS-only node, started by the first test that asks.
async fn node() -> &'static ScratchNode {
    tokio::task::spawn_blocking(|| NODE.get_or_init(|| ScratchNode::start(Listener::Tls, None, "")))
        .await
        .unwrap()
}

/// `amqps://guest:guest@localhost:PORT/%2f?{params}` on the shared node.
fn amqps(node: &ScratchNode, params: &str) -> String {
    node.url("amqps", "localhost", params)
}

fn cacertfile(path: &std::path::Path) -> String {
    format!("cacertfile={}", path.display())
}

/// The broker settings of a test, pointing at `urls`.
fn settings(urls: &[&str]) -> AmqpSettings {
    let mut s = Settings::load_from(Role::Ingest, None, HashMap::new())
        .unwrap()
        .amqp;
    s.urls = urls.iter().map(|u| (*u).into()).collect();
    s.prefix = format!("amqps-{}", uuid::Uuid::new_v4().simple());
    s
}

async fn batch_goes_through(urls: Vec<String>) {
    let app = spawn_app_with(1, |s| {
        s.amqp.urls = urls.into_iter().map(Into::into).collect();
    })
    .await;
    let org = app.org_with_vehicles().await;
    let process = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "over-tls"}, "attributes": {"name": "Zoé"}}]),
        )
        .await;
    assert_eq!(process["status"], "completed", "{process}");
    let records = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(records["over-tls"]["attributes"]["name"], "Zoé");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_end_to_end_over_amqps_with_cacertfile() {
    let node = node().await;
    batch_goes_through(vec![amqps(node, &cacertfile(&node.ca()))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_list_of_urls_a_dead_first_node_is_passed_over() {
    let node = node().await;
    let dead = "amqp://guest:guest@127.0.0.1:1/%2f".to_owned();
    batch_goes_through(vec![dead, amqps(node, &cacertfile(&node.ca()))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_another_ca_signed_is_refused_saying_so_and_never_ready() {
    let node = node().await;
    let url = amqps(node, &cacertfile(&node.other_ca()));
    // Every attempt says what is wrong with the certificate, not only the
    // first: it is what each retry's log line shows.
    let broker = Broker::new(&settings(&[&url]), "test").unwrap();
    for _ in 0..2 {
        let e = amqp::describe(&broker.connection().await.unwrap_err());
        assert!(
            e.contains("TLS certificate verify failed: unknown issuer")
                && e.contains("cacertfile")
                && e.contains("amqps://guest:***@localhost"),
            "{e}"
        );
    }
    // The name is checked too (verify_peer, the default).
    let wrong_name = format!(
        "{}&server_name_indication=mq.invalid",
        cacertfile(&node.ca())
    );
    let e = amqp::connect(&settings(&[&amqps(node, &wrong_name)]), "test")
        .await
        .map(drop)
        .unwrap_err();
    assert!(
        amqp::describe(&e).contains("TLS certificate verify failed"),
        "{e}"
    );
    let app = spawn_app_with(0, |s| s.amqp.urls = vec![url.into()]).await;
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.json::<Value>().await.unwrap()["broker"], "down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_none_connects_whoever_signed_the_certificate() {
    let node = node().await;
    for params in [
        format!("verify=verify_none&{}", cacertfile(&node.other_ca())),
        "verify=verify_none".to_owned(),
    ] {
        let conn = amqp::connect(&settings(&[&amqps(node, &params)]), "test")
            .await
            .unwrap_or_else(|e| panic!("{params}: {e}"));
        assert!(conn.status().connected());
        let _ = conn.close(200, "OK".into()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_amqp_to_a_tls_only_port_fails_saying_so() {
    let node = node().await;
    let plain = node.url("amqp", "127.0.0.1", "");
    let plain = settings(&[&plain]);
    let attempt = amqp::connect(&plain, "test");
    let e = tokio::time::timeout(Duration::from_secs(30), attempt)
        .await
        .expect("a plain connection to a TLS port hung")
        .map(drop)
        .unwrap_err();
    let e = amqp::describe(&e);
    assert!(e.contains("amqps://"), "{e}");
}

/// A broker URL that cannot be used stops ingest at start, saying why,
/// instead of answering 503 for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_url_that_cannot_work_stops_ingest_at_start() {
    for (url, says) in [
        ("amqp://guest:secret@127.0.0.1:notaport/%2f", "invalid port"),
        (
            "amqps://guest:secret@localhost/%2f?cacertfile=/nonexistent/ca.pem",
            "cacertfile: cannot read /nonexistent/ca.pem",
        ),
        (
            "amqp://guest:secret@localhost/%2f?cacertfile=/ca.pem",
            "use amqps://",
        ),
    ] {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_objectsync-ingest"))
            .env("AMQP_URL", url)
            .env_remove("AMQP_URL_FILE")
            .env("OBJECTSYNC__HTTP__PORT", "0")
            .output();
        let output = tokio::time::timeout(Duration::from_secs(30), child)
            .await
            .expect("ingest kept going with a broker URL that cannot work")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{url}: {stderr}");
        assert!(stderr.contains(says), "{url}: {stderr}");
        assert!(!stderr.contains("secret"), "{stderr}");
    }
}

/// The deployment a managed PostgreSQL and a managed RabbitMQ make: both
/// TLS-only, both verified against their CA, a batch end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_through_with_both_servers_tls_only_and_verified() {
    let node = node().await;
    let pg = tokio::task::spawn_blocking(objectsync_testkit::tls_postgres::TlsPostgres::start)
        .await
        .unwrap();
    let database_url = pg.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={}", pg.ca().display()),
    );
    let sandbox = objectsync_testkit::Sandbox::create_on("tls", Some(&database_url)).await;
    let amqp_url = amqps(node, &cacertfile(&node.ca()));
    let app = objectsync_testkit::spawn_app_in(sandbox, 1, |s| {
        s.amqp.urls = vec![amqp_url.into()];
    })
    .await;
    let org = app.org_with_vehicles().await;
    let process = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "both-tls"}, "attributes": {"name": "Zoé"}}]),
        )
        .await;
    assert_eq!(process["status"], "completed", "{process}");
    let ssl: bool = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the database session is not encrypted");
    drop(app);
    drop(pg);
}
