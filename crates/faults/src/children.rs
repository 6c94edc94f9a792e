//! Workers as real child processes, so that they can be SIGKILLed.
//!
//! Each child is this same binary in its hidden `worker` mode, which runs
//! exactly what `objectsync-worker` runs (`objectsync_worker::run_process`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use objectsync_infra::Settings;
use tokio::process::{Child, Command};

pub(crate) struct Workers {
    exe: PathBuf,
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    children: Vec<Child>,
    spawned: usize,
}

impl Workers {
    /// Starts `n` workers against the database and queues of `settings`.
    pub(crate) fn start(settings: &Settings, n: usize, log_dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&log_dir)?;
        let env = vec![
            ("DATABASE_URL".into(), settings.database.url.clone()),
            ("AMQP_URL".into(), settings.amqp.url.clone()),
            (
                "OBJECTSYNC__AMQP__PREFIX".into(),
                settings.amqp.prefix.clone(),
            ),
            (
                "OBJECTSYNC__AMQP__MAX_DELIVERIES".into(),
                settings.amqp.max_deliveries.to_string(),
            ),
            ("OBJECTSYNC__HTTP__PORT".into(), "0".into()),
            ("OBJECTSYNC__DATABASE__POOL_SIZE".into(), "8".into()),
            ("OBJECTSYNC__LOG__FORMAT".into(), "json".into()),
            (
                "RUST_LOG".into(),
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,objectsync_worker=info".into()),
            ),
        ];
        let mut workers = Self {
            exe: std::env::current_exe()?,
            env,
            log_dir,
            children: Vec::new(),
            spawned: 0,
        };
        for _ in 0..n {
            let child = workers.spawn()?;
            workers.children.push(child);
        }
        Ok(workers)
    }

    fn spawn(&mut self) -> std::io::Result<Child> {
        self.spawned += 1;
        let log = std::fs::File::create(self.log_dir.join(format!("worker-{}.log", self.spawned)))?;
        Command::new(&self.exe)
            .arg("worker")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
    }

    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    /// SIGKILLs worker `i` and starts a fresh one in its place.
    pub(crate) async fn kill_and_replace(&mut self, i: usize) -> std::io::Result<()> {
        let child = &mut self.children[i];
        child.kill().await?;
        let fresh = self.spawn()?;
        self.children[i] = fresh;
        Ok(())
    }

    /// Sends SIGTERM to every worker and waits for each to exit; returns the
    /// workers that did not exit 0 within `grace`.
    pub(crate) async fn stop_gracefully(&mut self, grace: Duration) -> Vec<String> {
        for child in &self.children {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
        }
        let mut problems = Vec::new();
        for (i, child) in self.children.iter_mut().enumerate() {
            match tokio::time::timeout(grace, child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => problems.push(format!("worker {i} exited with {status}")),
                Ok(Err(e)) => problems.push(format!("worker {i}: {e}")),
                Err(_) => {
                    let _ = child.kill().await;
                    problems.push(format!("worker {i} did not stop within {grace:?}"));
                }
            }
        }
        problems
    }

    pub(crate) fn log_dir(&self) -> &PathBuf {
        &self.log_dir
    }
}
