//! Configuration, layered with the `config` crate: built-in defaults, then an
//! optional file (`--config FILE`), then `OBJECTSYNC__SECTION__KEY`
//! environment variables, then `DATABASE_URL` and `AMQP_URL`, which win over
//! everything because that is what deployment platforms set (and
//! `DATABASE_READ_URL`, the same for `database.read_url`). Secrets may come
//! from files instead (`DATABASE_URL_FILE`, see `secret_files`).

use std::collections::HashMap;
use std::path::Path;

use config::{Config, Environment, File};
use serde::Deserialize;

mod amqp;
mod console;
mod events;
mod inbox;
mod limits;
mod retention;
mod secret;
mod secret_files;

pub use amqp::AmqpSettings;
pub use console::ConsoleSettings;
pub use events::{EventSettings, WebhookSettings};
pub use inbox::InboxSettings;
pub use limits::{InvalidLimit, LimitSettings};
pub use retention::RetentionSettings;
/// The admin token's type, and how to read it, for the crates that set or
/// check it.
pub use secrecy::{ExposeSecret, SecretString};
pub use secret::SecretUrl;
pub use secret_files::SecretFileError;

/// Which binary is loading settings; the two differ only in defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Worker,
}

impl Role {
    fn default_port(self) -> u16 {
        match self {
            Self::Ingest => 8080,
            Self::Worker => 8081,
        }
    }

    /// The binary's name, which its database sessions carry by default.
    fn binary(self) -> &'static str {
        match self {
            Self::Ingest => "objectsync-ingest",
            Self::Worker => "objectsync-worker",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    /// A limit out of its range (see [`LimitSettings::check`]).
    #[error("configuration: limits.{} (OBJECTSYNC__LIMITS__{}) {}", .0.field, .0.field.to_uppercase(), .0.expected)]
    Limit(#[from] InvalidLimit),
    /// An admin token too short to stand up to guessing.
    #[error(
        "configuration: the admin token (OBJECTSYNC__ADMIN__TOKEN) has {0} characters; it needs \
         at least {min}, e.g. one made with `openssl rand -hex 32`",
        min = AdminSettings::MIN_TOKEN_CHARS
    )]
    ShortAdminToken(usize),
    /// A secret given twice, or in a file that cannot be read.
    #[error(transparent)]
    SecretFile(#[from] SecretFileError),
}

/// Everything both binaries can be configured with.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub http: HttpSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub console: ConsoleSettings,
    pub limits: LimitSettings,
    pub inbox: InboxSettings,
    pub log: LogSettings,
    pub worker: WorkerSettings,
    pub events: EventSettings,
    pub webhooks: WebhookSettings,
    /// What is removed when (`OBJECTSYNC__RETENTION__…`).
    #[serde(default)]
    pub retention: RetentionSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// A `postgres://` URL.
    pub url: SecretUrl,
    /// A hot standby of `url` for the reads that tolerate a little lag
    /// (record lists, the console's overview); `None` (or empty) reads
    /// everything from `url`. See `db::ReadPool`.
    #[serde(default)]
    pub read_url: Option<SecretUrl>,
    /// The most the read standby may lag behind `url` while it serves
    /// reads (ms): further behind, they go to `url` until it catches up
    /// (see `db::ReadPool::watch_lag`). 0: no bound.
    pub read_max_lag_ms: u64,
    /// Connections in the pool of each process.
    pub pool_size: usize,
    /// How long a request waits for a free connection before it fails (ms).
    pub pool_timeout_ms: u64,
    /// Longest statement of a request handler (ms): PostgreSQL cancels it
    /// and the request answers 503 instead of hanging.
    pub statement_timeout_ms: u64,
    /// Longest wait of a request handler's statement for a lock (ms).
    pub lock_timeout_ms: u64,
    /// Longest statement of a worker applying a batch (ms): larger than a
    /// request's, since a 1,000-record batch on a large table takes longer.
    /// A timed-out batch is retried, then handed back to the broker.
    pub apply_statement_timeout_ms: u64,
    /// Longest wait of a worker's statement for a row or table lock (ms).
    pub apply_lock_timeout_ms: u64,
    /// Longest statement of the background monitors (stale processes,
    /// dead letters, heartbeats, gauges, sweeps) (ms).
    pub monitor_statement_timeout_ms: u64,
    /// Longest wait of a monitor's statement for a lock (ms).
    pub monitor_lock_timeout_ms: u64,
    /// What the process's sessions call themselves (`application_name`,
    /// with the pool's kind after a slash: `objectsync-worker/apply`), so
    /// that `pg_stat_activity` tells whose a session is; the binary's name
    /// by default. An `application_name` in the URL wins.
    pub application_name: String,
    /// The password `objectsync-ingest migrate` gives the app role (see
    /// `db::APP_ROLE`), letting it log in; unset, migrate leaves the role
    /// as it is. Only `migrate` reads it.
    #[serde(default)]
    pub app_password: Option<SecretString>,
}

impl DatabaseSettings {
    /// `read_max_lag_ms` as a bound (`None` for 0: no bound).
    pub fn read_max_lag(&self) -> Option<std::time::Duration> {
        (self.read_max_lag_ms > 0).then(|| std::time::Duration::from_millis(self.read_max_lag_ms))
    }

    /// The timeouts as `(name, statement, lock)`, for validation.
    fn timeouts(&self) -> [(&'static str, u64, u64); 3] {
        [
            ("", self.statement_timeout_ms, self.lock_timeout_ms),
            (
                "apply_",
                self.apply_statement_timeout_ms,
                self.apply_lock_timeout_ms,
            ),
            (
                "monitor_",
                self.monitor_statement_timeout_ms,
                self.monitor_lock_timeout_ms,
            ),
        ]
    }

    /// Every timeout is at least 1 ms (0 would turn it off: the point is
    /// that no wait is unbounded), at most what PostgreSQL takes (`i32`
    /// milliseconds), and a lock wait is no longer than the statement it is
    /// part of (a longer one could never fire).
    fn validate(&self) -> Result<(), String> {
        let max = i32::MAX as u64;
        for (role, statement, lock) in self.timeouts() {
            for (what, ms) in [("statement", statement), ("lock", lock)] {
                if ms == 0 || ms > max {
                    return Err(format!(
                        "database.{role}{what}_timeout_ms must be between 1 and {max}, not {ms}"
                    ));
                }
            }
            if lock > statement {
                return Err(format!(
                    "database.{role}lock_timeout_ms ({lock}) must not exceed \
                     database.{role}statement_timeout_ms ({statement})"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// Time a client has to send a request's headers, and time an idle
    /// keep-alive connection is kept (ms).
    pub header_timeout_ms: u64,
    /// Time a client has to send a request's whole body, from the end of
    /// its headers (ms): a deadline, not a pause between bytes.
    pub body_timeout_ms: u64,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdminSettings {
    /// With no token the admin API answers 404: disabled, never open.
    pub token: Option<SecretString>,
}

impl AdminSettings {
    /// The shortest admin token accepted: it opens every organization's
    /// data, so it must not be guessable (32 hex characters are 128 bits).
    pub const MIN_TOKEN_CHARS: usize = 32;

    /// Refuses a token shorter than [`Self::MIN_TOKEN_CHARS`]; an empty one
    /// is no token (the admin API stays disabled).
    fn check(&self) -> Result<(), SettingsError> {
        match self
            .token
            .as_ref()
            .map(|t| t.expose_secret().chars().count())
        {
            Some(n) if n > 0 && n < Self::MIN_TOKEN_CHARS => Err(SettingsError::ShortAdminToken(n)),
            _ => Ok(()),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    /// Batches one worker process applies at once, and takes ahead from
    /// each batch queue (the AMQP prefetch of each queue's consumer).
    pub prefetch: u16,
    /// Most linked records per associated type on one record (Brevo: 10).
    pub max_links_per_type: u32,
    /// How long a worker keeps retrying a transient failure within one
    /// delivery before handing the batch back to the broker (ms).
    pub retry_budget_ms: u64,
    /// Seconds to let in-flight batches finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// How long a batch waits for older batches of its organization that
    /// touch the same records before it gives its place in the queue back
    /// (ms).
    pub order_wait_ms: u64,
    /// A process still open this long after its last delivery (or its
    /// acceptance, if never delivered) is reported as stale: logged once,
    /// counted, listed by `admin stale-processes`.
    pub stale_after_secs: u64,
    /// A process still open this long after its last delivery is failed, so
    /// that no process stays open forever; 0 never fails one.
    pub fail_stale_after_secs: u64,
    /// A process that later batches of its organization have waited for
    /// this long, not delivered for as long, and whose message no queue or
    /// worker holds any more, is failed (its message is lost: purged, say)
    /// instead of holding them back until `fail_stale_after_secs`; 0 never
    /// fails one this way.
    pub fail_lost_after_secs: u64,
    /// How often a worker writes its row in the `workers` table (what it is
    /// applying, for the console); readers take a worker whose row is three
    /// heartbeats old for gone.
    pub heartbeat_secs: u64,
}

impl Settings {
    /// Loads settings from defaults, `file`, and the process environment.
    pub fn load(role: Role, file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(role, file, std::env::vars().collect())
    }

    /// Like [`Settings::load`] with an explicit environment, for tests.
    pub fn load_from(
        role: Role,
        file: Option<&Path>,
        env: HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
        let mut builder = Config::builder()
            .set_default(
                "database.url",
                "postgres://postgres@127.0.0.1:5432/objectsync",
            )?
            .set_default("database.pool_size", 16)?
            .set_default("database.application_name", role.binary())?
            .set_default("database.pool_timeout_ms", 5000)?
            .set_default("database.read_max_lag_ms", 10_000)?
            .set_default("database.statement_timeout_ms", 30_000)?
            .set_default("database.lock_timeout_ms", 5_000)?
            .set_default("database.apply_statement_timeout_ms", 120_000)?
            .set_default("database.apply_lock_timeout_ms", 10_000)?
            .set_default("database.monitor_statement_timeout_ms", 60_000)?
            .set_default("database.monitor_lock_timeout_ms", 10_000)?
            .set_default("amqp.prefix", "objectsync")?
            .set_default("amqp.max_deliveries", 5)?
            .set_default("amqp.partitions", 8)?
            .set_default("amqp.bulk_after", 8)?
            .set_default("http.host", "127.0.0.1")?
            .set_default("http.port", role.default_port())?
            .set_default("http.header_timeout_ms", 5_000)?
            .set_default("http.body_timeout_ms", 30_000)?
            .set_default("http.max_connections", 1_024)?
            .set_default("limits.writes_per_second", 50.0)?
            .set_default("limits.writes_burst", 100.0)?
            .set_default("limits.reads_per_second", 100.0)?
            .set_default("limits.reads_burst", 200.0)?
            .set_default("limits.max_open_processes", 500)?
            .set_default("inbox.consume", true)?
            .set_default("inbox.prefetch", 8)?
            .set_default("log.format", "auto")?
            .set_default("worker.prefetch", 4)?
            .set_default("worker.max_links_per_type", 10)?
            .set_default("worker.retry_budget_ms", 30_000)?
            .set_default("worker.shutdown_grace_secs", 30)?
            .set_default("worker.order_wait_ms", 5_000)?
            .set_default("worker.stale_after_secs", 600)?
            .set_default("worker.fail_stale_after_secs", 86_400)?
            .set_default("worker.fail_lost_after_secs", 300)?
            .set_default("worker.heartbeat_secs", 5)?
            .set_default("events.poll_ms", 250)?
            .set_default("webhooks.timeout_ms", 10_000)?
            .set_default("webhooks.retry_initial_ms", 5_000)?
            .set_default("webhooks.retry_max_ms", 3_600_000)?
            .set_default("webhooks.retry_for_secs", 86_400)?
            .set_default("webhooks.per_endpoint", 4)?
            .set_default("webhooks.max_in_flight", 64)?
            .set_default("webhooks.allow_private_addresses", true)?;
        if let Some(file) = file {
            builder = builder.add_source(File::from(file).required(true));
        }
        let database_url = secret_files::secret(&env, "DATABASE_URL")?;
        let read_url = secret_files::secret(&env, "DATABASE_READ_URL")?;
        let amqp_url = secret_files::secret(&env, "AMQP_URL")?;
        let amqp_urls = secret_files::secret(&env, "OBJECTSYNC__AMQP__URLS")?;
        let admin_token = secret_files::secret(&env, "OBJECTSYNC__ADMIN__TOKEN")?;
        let app_password = secret_files::secret(&env, "OBJECTSYNC__DATABASE__APP_PASSWORD")?;
        let env = secret_files::without_file_variables(env);
        builder = builder
            .add_source(
                Environment::with_prefix("OBJECTSYNC")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(env.into_iter().collect())),
            )
            .set_override_option("database.url", database_url)?
            .set_override_option("database.read_url", read_url)?
            .set_override_option("amqp.url", amqp_url)?
            .set_override_option("amqp.urls", amqp_urls)?
            .set_override_option("admin.token", admin_token)?
            .set_override_option("database.app_password", app_password)?;
        let settings: Self = builder.build()?.try_deserialize()?;
        settings
            .database
            .validate()
            .map_err(|e| SettingsError::Config(config::ConfigError::Message(e)))?;
        settings.limits.check()?;
        settings
            .retention
            .check()
            .map_err(|e| SettingsError::Config(config::ConfigError::Message(e)))?;
        settings.admin.check()?;
        Ok(settings)
    }

    /// The address the HTTP server binds to.
    pub fn http_addr(&self) -> String {
        format!("{}:{}", self.http.host, self.http.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment of these variables (the settings' submodules' tests
    /// use it too).
    pub(super) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_short_admin_token_is_refused_with_how_to_make_one() {
        let e = Settings::load_from(
            Role::Ingest,
            None,
            env(&[("OBJECTSYNC__ADMIN__TOKEN", "secret")]),
        )
        .unwrap_err();
        assert!(matches!(e, SettingsError::ShortAdminToken(6)), "{e}");
        assert!(e.to_string().contains("openssl rand -hex 32"), "{e}");
        let empty =
            Settings::load_from(Role::Ingest, None, env(&[("OBJECTSYNC__ADMIN__TOKEN", "")]));
        assert!(empty.is_ok(), "an empty token is no token");
    }

    #[test]
    fn defaults_point_at_local_services() {
        let s = Settings::load_from(Role::Ingest, None, HashMap::new()).unwrap();
        assert_eq!(
            s.database.url.expose_secret(),
            "postgres://postgres@127.0.0.1:5432/objectsync"
        );
        assert_eq!(
            s.amqp.urls[0].expose_secret(),
            "amqp://guest:guest@127.0.0.1:5672/%2f"
        );
        assert_eq!(s.http_addr(), "127.0.0.1:8080");
        assert!(s.inbox.consume);
        assert_eq!(s.inbox.prefetch, 8);
        assert!(s.admin.token.is_none());
        let w = Settings::load_from(Role::Worker, None, HashMap::new()).unwrap();
        assert_eq!(w.http.port, 8081);
        assert_eq!(s.database.application_name, "objectsync-ingest");
        assert_eq!(w.database.application_name, "objectsync-worker");
        assert_eq!(w.worker.heartbeat_secs, 5);
        assert_eq!(w.worker.fail_lost_after_secs, 300);
        assert!(!s.console.secure_cookie, "plain HTTP works out of the box");
        assert!(s.database.app_password.is_none());
    }

    #[test]
    fn environment_overrides_defaults_and_conventional_variables_win() {
        let s = Settings::load_from(
            Role::Ingest,
            None,
            env(&[
                ("OBJECTSYNC__HTTP__PORT", "9000"),
                (
                    "OBJECTSYNC__ADMIN__TOKEN",
                    "s3cret-s3cret-s3cret-s3cret-s3cret",
                ),
                ("OBJECTSYNC__DATABASE__URL", "postgres://ignored/x"),
                ("DATABASE_URL", "postgres://u:pw@db:5432/prod"),
                ("AMQP_URL", "amqp://mq:5672/%2f"),
                ("OBJECTSYNC__WORKER__PREFETCH", "3"),
                ("OBJECTSYNC__CONSOLE__SECURE_COOKIE", "true"),
                ("OBJECTSYNC__DATABASE__APP_PASSWORD", "12345"),
            ]),
        )
        .unwrap();
        assert_eq!(s.http.port, 9000);
        assert_eq!(
            s.admin.token.as_ref().map(ExposeSecret::expose_secret),
            Some("s3cret-s3cret-s3cret-s3cret-s3cret")
        );
        assert_eq!(
            s.database.url.expose_secret(),
            "postgres://u:pw@db:5432/prod"
        );
        assert_eq!(s.amqp.urls[0].expose_secret(), "amqp://mq:5672/%2f");
        assert_eq!(s.worker.prefetch, 3);
        assert!(s.console.secure_cookie);
        // Digits only, and still a password, not a number.
        assert_eq!(
            s.database
                .app_password
                .as_ref()
                .map(ExposeSecret::expose_secret),
            Some("12345")
        );
    }

    #[test]
    fn the_read_standby_s_lag_is_bounded_by_default_and_zero_lifts_the_bound() {
        use std::time::Duration;
        let s = Settings::load_from(Role::Ingest, None, HashMap::new()).unwrap();
        assert_eq!(s.database.read_max_lag(), Some(Duration::from_secs(10)));
        for (value, bound) in [("250", Some(Duration::from_millis(250))), ("0", None)] {
            let s = Settings::load_from(
                Role::Ingest,
                None,
                env(&[("OBJECTSYNC__DATABASE__READ_MAX_LAG_MS", value)]),
            )
            .unwrap();
            assert_eq!(s.database.read_max_lag(), bound, "{value}");
        }
    }

    #[test]
    fn a_read_url_is_optional_and_its_conventional_variable_wins() {
        let s = Settings::load_from(Role::Ingest, None, HashMap::new()).unwrap();
        assert!(s.database.read_url.is_none());
        let s = Settings::load_from(
            Role::Ingest,
            None,
            env(&[(
                "OBJECTSYNC__DATABASE__READ_URL",
                "postgres://u:pw@standby/x",
            )]),
        )
        .unwrap();
        let url = s.database.read_url.expect("read_url");
        assert_eq!(url.expose_secret(), "postgres://u:pw@standby/x");
        assert_eq!(format!("{url:?}"), "\"postgres://u:***@standby/x\"");
        let s = Settings::load_from(
            Role::Ingest,
            None,
            env(&[
                ("OBJECTSYNC__DATABASE__READ_URL", "postgres://ignored/x"),
                ("DATABASE_READ_URL", "postgres://standby-2/x"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.database.read_url.as_ref().map(SecretUrl::expose_secret),
            Some("postgres://standby-2/x")
        );
    }

    #[test]
    fn a_file_sits_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("objectsync-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("objectsync.toml");
        std::fs::write(&path, "[http]\nport = 7000\nhost = \"0.0.0.0\"\n").unwrap();
        let s = Settings::load_from(
            Role::Ingest,
            Some(&path),
            env(&[("OBJECTSYNC__HTTP__PORT", "7001")]),
        )
        .unwrap();
        assert_eq!(s.http.host, "0.0.0.0");
        assert_eq!(s.http.port, 7001);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn database_timeouts_have_defaults_and_are_checked() {
        let s = Settings::load_from(Role::Worker, None, HashMap::new()).unwrap();
        assert_eq!(s.database.statement_timeout_ms, 30_000);
        assert!(s.database.apply_statement_timeout_ms > s.database.statement_timeout_ms);
        for (key, value) in [
            ("OBJECTSYNC__DATABASE__LOCK_TIMEOUT_MS", "0"),
            (
                "OBJECTSYNC__DATABASE__APPLY_STATEMENT_TIMEOUT_MS",
                "3000000000",
            ),
            ("OBJECTSYNC__DATABASE__MONITOR_LOCK_TIMEOUT_MS", "60001"),
        ] {
            let e = Settings::load_from(Role::Worker, None, env(&[(key, value)])).unwrap_err();
            let name = key["OBJECTSYNC__".len()..]
                .replace("__", ".")
                .to_lowercase();
            assert!(e.to_string().contains(&name), "{key}={value}: {e}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = Settings::load_from(
            Role::Ingest,
            None,
            env(&[
                (
                    "OBJECTSYNC__ADMIN__TOKEN",
                    "s3cret-s3cret-s3cret-s3cret-s3cret",
                ),
                ("DATABASE_URL", "postgres://u:pw@db/x"),
                ("OBJECTSYNC__DATABASE__APP_PASSWORD", "app-s3cret"),
            ]),
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("pw@"), "{shown}");
        // Where the services are stays in the log, with the passwords out.
        assert!(shown.contains("\"postgres://u:***@db/x\""), "{shown}");
        assert!(
            shown.contains("\"amqp://guest:***@127.0.0.1:5672/%2f\""),
            "{shown}"
        );
    }
}
