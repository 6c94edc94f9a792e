//! The suite's workers and its inbox's ingest replica, as child processes
//! so that they can be SIGKILLed (see `objectsync_testkit::services`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use objectsync_infra::Settings;
use objectsync_testkit::services::{self, Spawner};
use tokio::process::Child;

/// Child processes of one mode (`worker` or `ingest`).
pub(crate) struct Children {
    mode: &'static str,
    spawner: Spawner,
    children: Vec<Child>,
    /// With the nodes of a cluster, each worker's list of them, rotated so
    /// that the workers start on different nodes.
    rotations: Vec<String>,
}

impl Children {
    /// Starts `n` workers against the database and queues of `settings`.
    pub(crate) fn workers(
        settings: &Settings,
        n: usize,
        log_dir: PathBuf,
    ) -> std::io::Result<Self> {
        let spawner = Spawner::new(settings, log_dir, "warn,objectsync_worker=info")?
            .with_env("OBJECTSYNC__HTTP__PORT", "0")
            .with_env("OBJECTSYNC__DATABASE__POOL_SIZE", "8");
        Self::start("worker", spawner, settings, n)
    }

    /// Starts `n` ingest replicas that consume the inbox (their HTTP API on
    /// a port of their own that nobody calls).
    pub(crate) fn inbox_replicas(
        settings: &Settings,
        n: usize,
        log_dir: PathBuf,
    ) -> std::io::Result<Self> {
        let spawner = Spawner::new(settings, log_dir, "warn,objectsync_ingest=info")?
            .with_env("OBJECTSYNC__HTTP__PORT", "0")
            .with_env("OBJECTSYNC__INBOX__CONSUME", "true")
            .with_env("OBJECTSYNC__DATABASE__POOL_SIZE", "8");
        Self::start("ingest", spawner, settings, n)
    }

    fn start(
        mode: &'static str,
        spawner: Spawner,
        settings: &Settings,
        n: usize,
    ) -> std::io::Result<Self> {
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
        let mut children = Self {
            mode,
            spawner,
            children: Vec::new(),
            rotations,
        };
        for i in 0..n {
            let child = children.spawn(i)?;
            children.children.push(child);
        }
        Ok(children)
    }

    /// Starts child `i` (a first one, or its replacement).
    fn spawn(&mut self, i: usize) -> std::io::Result<Child> {
        match self.rotations.get(i % self.rotations.len().max(1)) {
            Some(urls) => self
                .spawner
                .spawn(self.mode, &[("OBJECTSYNC__AMQP__URLS", urls.as_str())]),
            None => self.spawner.spawn(self.mode, &[]),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    /// SIGKILLs child `i` and starts a fresh one in its place.
    pub(crate) async fn kill_and_replace(&mut self, i: usize) -> std::io::Result<()> {
        self.children[i].kill().await?;
        self.children[i] = self.spawn(i)?;
        Ok(())
    }

    /// SIGTERM to every child; returns the ones that did not exit 0 within
    /// `grace`.
    pub(crate) async fn stop_gracefully(&mut self, grace: Duration) -> Vec<String> {
        services::terminate(&mut self.children, grace).await
    }

    pub(crate) fn log_dir(&self) -> &Path {
        self.spawner.log_dir()
    }
}
