//! The services as child processes, for the fault suite and the bench: this
//! same binary run in a hidden mode (`ingest`, `worker`), pointed at a
//! sandbox, each with a log file of its own, so that it can be measured,
//! SIGKILLed or stopped with SIGTERM like a deployed one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use objectsync_infra::Settings;
use tokio::process::{Child, Command};

/// `AMQP_URL` for one broker, `OBJECTSYNC__AMQP__URLS` for the nodes of a
/// cluster.
fn broker_variable(settings: &Settings) -> (String, String) {
    let urls: Vec<&str> = settings
        .amqp
        .urls
        .iter()
        .map(|u| u.expose_secret())
        .collect();
    match urls.as_slice() {
        [one] => ("AMQP_URL".into(), (*one).to_owned()),
        many => ("OBJECTSYNC__AMQP__URLS".into(), many.join(",")),
    }
}

/// Variables of this process's environment that would contradict the
/// broker variable the children get.
const BROKER_VARIABLES: [&str; 4] = [
    "AMQP_URL",
    "AMQP_URL_FILE",
    "OBJECTSYNC__AMQP__URLS",
    "OBJECTSYNC__AMQP__URLS_FILE",
];

/// Starts child processes with the sandbox's settings in their environment.
pub struct Spawner {
    exe: PathBuf,
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    spawned: usize,
}

impl Spawner {
    /// Children log JSON at `RUST_LOG` if set, else at `default_log`, into
    /// files under `log_dir`.
    pub fn new(settings: &Settings, log_dir: PathBuf, default_log: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(&log_dir)?;
        let env = vec![
            (
                "DATABASE_URL".into(),
                settings.database.url.expose_secret().to_owned(),
            ),
            broker_variable(settings),
            (
                "OBJECTSYNC__AMQP__PREFIX".into(),
                settings.amqp.prefix.clone(),
            ),
            (
                "OBJECTSYNC__AMQP__MAX_DELIVERIES".into(),
                settings.amqp.max_deliveries.to_string(),
            ),
            (
                "OBJECTSYNC__AMQP__PARTITIONS".into(),
                settings.amqp.partitions.to_string(),
            ),
            (
                "OBJECTSYNC__AMQP__BULK_AFTER".into(),
                settings.amqp.bulk_after.to_string(),
            ),
            (
                "OBJECTSYNC__LIMITS__WRITES_PER_SECOND".into(),
                settings.limits.writes_per_second.to_string(),
            ),
            (
                "OBJECTSYNC__LIMITS__WRITES_BURST".into(),
                settings.limits.writes_burst.to_string(),
            ),
            (
                "OBJECTSYNC__LIMITS__READS_PER_SECOND".into(),
                settings.limits.reads_per_second.to_string(),
            ),
            (
                "OBJECTSYNC__LIMITS__READS_BURST".into(),
                settings.limits.reads_burst.to_string(),
            ),
            (
                "OBJECTSYNC__LIMITS__MAX_OPEN_PROCESSES".into(),
                settings.limits.max_open_processes.to_string(),
            ),
            ("OBJECTSYNC__LOG__FORMAT".into(), "json".into()),
            (
                "RUST_LOG".into(),
                std::env::var("RUST_LOG").unwrap_or_else(|_| default_log.into()),
            ),
        ];
        Ok(Self {
            exe: std::env::current_exe()?,
            env,
            log_dir,
            spawned: 0,
        })
    }

    /// Adds a variable for every child.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The log file of the `n`th child started, named `name`.
    pub fn log_of(&self, name: &str, n: usize) -> PathBuf {
        self.log_dir.join(format!("{name}-{n}.log"))
    }

    /// Starts `<this binary> <mode>` with `extra` variables on top.
    pub fn spawn(&mut self, mode: &str, extra: &[(&str, &str)]) -> std::io::Result<Child> {
        let exe = self.exe.clone();
        self.spawn_program(&exe, &[mode], mode, extra)
    }

    /// Starts `program` with `args` and `extra` variables on top, logging
    /// into `<name>-<n>.log` (see [`Spawner::log_of`]).
    pub fn spawn_program(
        &mut self,
        program: &Path,
        args: &[&str],
        name: &str,
        extra: &[(&str, &str)],
    ) -> std::io::Result<Child> {
        self.spawned += 1;
        let log = std::fs::File::create(self.log_of(name, self.spawned))?;
        let mut command = Command::new(program);
        for var in BROKER_VARIABLES {
            command.env_remove(var);
        }
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
    }
}

/// Sends SIGTERM to every child, waits up to `grace` for each, SIGKILLs the
/// ones still running; returns what did not end with exit code 0.
pub async fn terminate(children: &mut [Child], grace: Duration) -> Vec<String> {
    for child in children.iter() {
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
    }
    let mut problems = Vec::new();
    for (i, child) in children.iter_mut().enumerate() {
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => problems.push(format!("child {i} exited with {status}")),
            Ok(Err(e)) => problems.push(format!("child {i}: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                problems.push(format!("child {i} did not stop within {grace:?}"));
            }
        }
    }
    problems
}
