//! Test support for the integration tests of every crate.
//!
//! [`spawn_app`] gives each test its own uuid-named PostgreSQL database and
//! its own RabbitMQ queue names (a unique prefix on the default vhost), runs
//! the migrations, starts ingest on port 0 and, unless asked otherwise, one
//! in-process worker. Dropping the [`TestApp`] stops everything and removes
//! the database and the queues, so tests run in parallel and leave nothing
//! behind. Set `TEST_LOG=1` to see the services' logs.

mod app_login;
pub mod citus;
mod contract;
pub mod events;
mod fixtures;
pub mod previous;
pub mod rabbitmq;
mod sandbox;
mod scratch;
mod scratch_pg;
pub mod services;
pub mod standby_postgres;
pub mod tls_postgres;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use objectsync_infra::{Settings, Topology};
use objectsync_ingest::Application;
use objectsync_worker::Worker;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use app_login::AppLogin;
pub use contract::{Client, request_schema_verdict};
pub use fixtures::{garage_definition, vehicle_definition};
pub use sandbox::Sandbox;

pub const ADMIN_TOKEN: &str = "test-admin-token-of-32-characters";

/// An organization made for a test, with its API key.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: i64,
    pub key: String,
}

struct Running {
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

/// A running ingest (and workers) on a database and queues of its own.
pub struct TestApp {
    /// `http://127.0.0.1:PORT` of ingest.
    pub address: String,
    /// Checks every answer against the OpenAPI document (see [`Client`]).
    pub client: Client,
    /// The settings ingest and the workers run with.
    pub settings: Settings,
    /// A pool on the test database, for assertions.
    pub pool: Pool,
    server: Running,
    workers: Vec<Running>,
    /// Declared last: dropped (database and queues removed) after the
    /// services above are stopped.
    _sandbox: Sandbox,
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_test_writer()
            .try_init();
    }
}

/// Ingest plus one worker.
/// An HTTP client that shows redirects instead of following them (the
/// console answers its forms with `303`s).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(1, |_| {}).await
}

/// Ingest plus `workers` workers, with settings adjusted by `configure`.
pub async fn spawn_app_with(workers: usize, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(None, workers, configure).await
}

/// Like [`spawn_app_with`], on the broker nodes `urls` if given instead of
/// the configured broker, which is then never connected to.
pub async fn spawn_app_on(
    urls: Option<&[String]>,
    workers: usize,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_in(
        Sandbox::create_on_brokers("test", urls).await,
        workers,
        configure,
    )
    .await
}

/// Like [`spawn_app_with`], on a sandbox made by the caller (on a server of
/// the test's own, say: see [`Sandbox::create_on`]).
pub async fn spawn_app_in(
    sandbox: Sandbox,
    workers: usize,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    init_logs();
    let mut settings = sandbox.settings.clone();
    settings.database.pool_size = 8;
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    settings.admin.token = Some(ADMIN_TOKEN.into());
    settings.worker.retry_budget_ms = 3000;
    settings.worker.shutdown_grace_secs = 10;
    // Tests about limits set their own.
    settings.limits = objectsync_infra::settings::LimitSettings::UNLIMITED;
    configure(&mut settings);

    let cancel = CancellationToken::new();
    let app = Application::build(&settings, &cancel)
        .await
        .expect("ingest builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            let _ = app.run_until(cancel).await;
        }
    });
    let mut test_app = TestApp {
        address,
        client: Client::default(),
        settings,
        pool: sandbox.pool.clone(),
        server: Running { cancel, handle },
        workers: Vec::new(),
        _sandbox: sandbox,
    };
    for _ in 0..workers {
        test_app.start_worker().await;
    }
    test_app
}

impl TestApp {
    /// Starts one more in-process worker.
    pub async fn start_worker(&mut self) {
        let mut settings = self.settings.clone();
        settings.http.port = 0;
        let worker = Worker::build(&settings).await.expect("worker builds");
        let cancel = CancellationToken::new();
        let handle = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                let _ = worker.run_until(cancel).await;
            }
        });
        self.workers.push(Running { cancel, handle });
    }

    /// Stops every worker gracefully (in-flight batches finish).
    pub async fn stop_workers(&mut self) {
        for w in self.workers.drain(..) {
            w.cancel.cancel();
            let _ = w.handle.await;
        }
    }

    pub fn topology(&self) -> Topology {
        Topology::new(&self.settings.amqp)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Logs in to the console as "Ada" over plain HTTP: the session's
    /// `Cookie` header value.
    pub async fn console_cookie(&self) -> String {
        let resp = no_redirects()
            .post(self.url("/console/login"))
            .form(&[("who", "Ada"), ("token", ADMIN_TOKEN), ("next", "/console")])
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 303, "console login");
        let cookie = resp.headers()["set-cookie"].to_str().expect("ascii cookie");
        cookie.split(';').next().unwrap_or_default().to_owned()
    }

    /// The HTML of console page `path`, with a session `cookie` (see
    /// [`TestApp::console_cookie`]); asserts a 200.
    pub async fn console_page(&self, cookie: &str, path: &str) -> String {
        let resp = reqwest::Client::new()
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        resp.text().await.expect("page text")
    }

    // ---- admin -------------------------------------------------------

    pub async fn admin_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("admin-token", ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Registers webhook `url` for `org`: its id and secret.
    pub async fn register_webhook(&self, org: &Org, url: &str) -> (i64, String) {
        let resp = self
            .admin_post(
                &format!("/admin/organizations/{}/webhooks", org.id),
                &json!({ "url": url }),
            )
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_i64().expect("id"),
            body["secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// Any admin call, with the admin token: the status and the JSON body
    /// (`null` when there is none).
    pub async fn admin_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("admin-token", ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn admin_put(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .header("admin-token", ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// A new organization (custom objects on or off) and its key.
    pub async fn create_org(&self, custom_objects_enabled: bool) -> Org {
        let resp = self
            .admin_post(
                "/admin/organizations",
                &json!({"name": "Acme", "custom_objects_enabled": custom_objects_enabled}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.expect("json");
        Org {
            id: body["id"].as_i64().expect("id"),
            key: body["api_key"].as_str().expect("api_key").to_owned(),
        }
    }

    /// Defines `name` for `org`, asserting success.
    pub async fn define_type(&self, org: &Org, name: &str, definition: &Value) -> Value {
        let resp = self
            .admin_put(
                &format!("/admin/organizations/{}/objects/{name}", org.id),
                definition,
            )
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// An enabled organization with `vehicle` and `garage`, associated.
    pub async fn org_with_vehicles_and_garages(&self) -> Org {
        let org = self.org_with_vehicles().await;
        self.define_type(&org, "garage", &garage_definition()).await;
        org
    }

    /// An enabled organization with `vehicle` defined.
    pub async fn org_with_vehicles(&self) -> Org {
        let org = self.create_org(true).await;
        self.define_type(&org, "vehicle", &vehicle_definition())
            .await;
        org
    }

    // ---- public API --------------------------------------------------

    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("api-key", key)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_bytes(&self, key: &str, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("api-key", key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn upsert(&self, key: &str, object_type: &str, body: &Value) -> reqwest::Response {
        self.post_bytes(
            key,
            &format!("/v3/objects/{object_type}/batch/upsert"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Posts a batch, asserts the 202 and returns the process id.
    pub async fn upsert_accepted(&self, org: &Org, object_type: &str, records: Value) -> i64 {
        let resp = self
            .upsert(&org.key, object_type, &json!({ "records": records }))
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["message"], "Batch object records are being processed");
        body["processId"].as_i64().expect("processId")
    }

    pub async fn process(&self, org: &Org, id: i64) -> Value {
        let resp = self.get(&org.key, &format!("/v3/processes/{id}")).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("json")
    }

    /// Polls a process until it is `completed` or `failed` (30 s at most).
    pub async fn wait_for_process(&self, org: &Org, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p = self.process(org, id).await;
            if p["status"] == "completed" || p["status"] == "failed" {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "process {id} still {}",
                p["status"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts a batch and waits for its process to end.
    pub async fn upsert_and_wait(&self, org: &Org, object_type: &str, records: Value) -> Value {
        let id = self.upsert_accepted(org, object_type, records).await;
        self.wait_for_process(org, id).await
    }

    pub async fn process_errors(&self, org: &Org, id: i64) -> Value {
        let resp = self
            .get(&org.key, &format!("/v3/processes/{id}/errors?limit=1000"))
            .await;
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("json")
    }

    /// Every record of a type, by ext_id (records without one under `#id`).
    pub async fn records_by_ext_id(&self, org: &Org, object_type: &str) -> HashMap<String, Value> {
        let mut out = HashMap::new();
        for page in 1.. {
            let resp = self
                .get(
                    &org.key,
                    &format!("/v3/objects/{object_type}/records?limit=1000&page_num={page}"),
                )
                .await;
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.expect("json");
            let records = body["records"].as_array().expect("records").clone();
            if records.is_empty() {
                break;
            }
            for r in records {
                let key = match r["identifiers"]["ext_id"].as_str() {
                    Some(ext) => ext.to_owned(),
                    None => format!("#{}", r["identifiers"]["id"]),
                };
                out.insert(key, r);
            }
        }
        out
    }

    /// How many processes exist in the test database.
    pub async fn process_count(&self) -> i64 {
        let client = self.pool.get().await.expect("db");
        client
            .query_one("select count(*) from processes", &[])
            .await
            .expect("count")
            .get(0)
    }

    /// Publishes raw bytes straight to the batch queue (poison tests).
    pub async fn publish_raw(&self, payload: &[u8]) {
        self.publish_raw_with(payload, BasicProperties::default())
            .await;
    }

    /// Publishes raw bytes with the given properties (headers) straight to
    /// the batch queue, persistently.
    pub async fn publish_raw_with(&self, payload: &[u8], properties: BasicProperties) {
        let conn = objectsync_infra::amqp::connect(&self.settings.amqp, "test")
            .await
            .expect("broker");
        let channel = conn.create_channel().await.expect("channel");
        channel
            .confirm_select(Default::default())
            .await
            .expect("confirm");
        channel
            .basic_publish(
                "".into(),
                self.topology().queue.as_str().into(),
                BasicPublishOptions::default(),
                payload,
                properties.with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        let _ = conn.close(200, "OK".into()).await;
    }

    /// Messages waiting in a queue.
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        let conn = objectsync_infra::amqp::connect(&self.settings.amqp, "test")
            .await
            .expect("broker");
        let channel = conn.create_channel().await.expect("channel");
        let q = channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .expect("queue exists");
        let _ = conn.close(200, "OK".into()).await;
        q.message_count()
    }

    /// Messages waiting in every batch queue together.
    pub async fn batch_depth(&self) -> u32 {
        let mut total = 0;
        for queue in self.topology().batch_queues() {
            total += self.queue_depth(queue).await;
        }
        total
    }

    /// Takes every message off the batch queues (as if lost), queue by
    /// queue, each in its order; an organization's batches share a queue,
    /// so theirs come in the order they were published.
    pub async fn take_batches(&self) -> Vec<(Vec<u8>, BasicProperties)> {
        let conn = objectsync_infra::amqp::connect(&self.settings.amqp, "test")
            .await
            .expect("broker");
        let channel = conn.create_channel().await.expect("channel");
        let mut out = Vec::new();
        for queue in self.topology().batch_queues() {
            while let Some(msg) = channel
                .basic_get(
                    queue.as_str().into(),
                    lapin::options::BasicGetOptions { no_ack: true },
                )
                .await
                .expect("basic.get")
            {
                out.push((msg.delivery.data.clone(), msg.delivery.properties.clone()));
            }
        }
        let _ = conn.close(200, "OK".into()).await;
        out
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for w in self.workers.drain(..) {
            w.cancel.cancel();
            w.handle.abort();
        }
        self.server.cancel.cancel();
        self.server.handle.abort();
    }
}

/// The first column of every row `sql` returns: for tests that compare
/// a list read from the database (names, plans, ids) with what they expect.
pub async fn column<T>(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<T>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    client
        .query(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The text of the `.value` of the console overview's card `id`.
pub fn console_card(html: &str, id: &str) -> String {
    let after = html
        .split(&format!("id=\"{id}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no card {id}"));
    let value = after.split("class=\"value\">").nth(1).expect("a value");
    value.split('<').next().unwrap_or_default().to_owned()
}
