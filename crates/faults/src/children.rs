//! The suite's workers, as child processes so that they can be SIGKILLed
//! (see `objectsync_testkit::services`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use objectsync_infra::Settings;
use objectsync_testkit::services::{self, Spawner};
use tokio::process::Child;

pub(crate) struct Workers {
    spawner: Spawner,
    children: Vec<Child>,
    /// With the nodes of a cluster, each worker's list of them, rotated so
    /// that the workers start on different nodes.
    rotations: Vec<String>,
}

impl Workers {
    /// Starts `n` workers against the database and queues of `settings`.
    pub(crate) fn start(settings: &Settings, n: usize, log_dir: PathBuf) -> std::io::Result<Self> {
        let spawner = Spawner::new(settings, log_dir, "warn,objectsync_worker=info")?
            .with_env("OBJECTSYNC__HTTP__PORT", "0")
            .with_env("OBJECTSYNC__DATABASE__POOL_SIZE", "8");
        let urls: Vec<&str> = settings
            .amqp
            .urls
            .iter()
            .map(|u| u.expose_secret())
            .collect();
        let rotations = match urls.len() {
            0 | 1 => Vec::new(),
            k => (1..=k)
                .map(|r| {
                    let mut list = urls.clone();
                    list.rotate_left(r % k);
                    list.join(",")
                })
                .collect(),
        };
        let mut workers = Self {
            spawner,
            children: Vec::new(),
            rotations,
        };
        for i in 0..n {
            let child = workers.spawn(i)?;
            workers.children.push(child);
        }
        Ok(workers)
    }

    /// Starts worker `i` (a first one, or its replacement).
    fn spawn(&mut self, i: usize) -> std::io::Result<Child> {
        match self.rotations.get(i % self.rotations.len().max(1)) {
            Some(urls) => self
                .spawner
                .spawn("worker", &[("OBJECTSYNC__AMQP__URLS", urls.as_str())]),
            None => self.spawner.spawn("worker", &[]),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    /// SIGKILLs worker `i` and starts a fresh one in its place.
    pub(crate) async fn kill_and_replace(&mut self, i: usize) -> std::io::Result<()> {
        self.children[i].kill().await?;
        self.children[i] = self.spawn(i)?;
        Ok(())
    }

    /// SIGTERM to every worker; returns the ones that did not exit 0 within
    /// `grace`.
    pub(crate) async fn stop_gracefully(&mut self, grace: Duration) -> Vec<String> {
        services::terminate(&mut self.children, grace).await
    }

    pub(crate) fn log_dir(&self) -> &Path {
        self.spawner.log_dir()
    }
}
