//! The whole system as it runs in production: ingest and the workers as
//! separate processes (this binary in its hidden `ingest` and `worker`
//! modes), so that each can be measured, and stopped, on its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use objectsync_infra::Settings;
use objectsync_testkit::services::{self, Spawner};
use tokio::process::Child;

pub(crate) struct System {
    pub(crate) address: String,
    spawner: Spawner,
    ingest: Child,
    workers: Vec<Child>,
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

const STOP_GRACE: Duration = Duration::from_secs(30);

impl System {
    pub(crate) async fn start(
        settings: &Settings,
        admin_token: &str,
        workers: usize,
    ) -> Result<Self, String> {
        let port = free_port().map_err(|e| e.to_string())?;
        let log_dir =
            std::env::temp_dir().join(format!("objectsync-bench-{}", settings.amqp.prefix));
        let mut spawner = Spawner::new(settings, log_dir, "warn")
            .map_err(|e| e.to_string())?
            .with_env("OBJECTSYNC__ADMIN__TOKEN", admin_token);
        let ingest = spawner
            .spawn("ingest", &[("OBJECTSYNC__HTTP__PORT", &port.to_string())])
            .map_err(|e| e.to_string())?;
        let mut system = Self {
            address: format!("http://127.0.0.1:{port}"),
            spawner,
            ingest,
            workers: Vec::new(),
        };
        system.wait_healthy().await?;
        system.start_workers(workers)?;
        Ok(system)
    }

    async fn wait_healthy(&self) -> Result<(), String> {
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = client.get(format!("{}/readyz", self.address)).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "ingest did not become ready; see {}",
            self.spawner.log_dir().display()
        ))
    }

    pub(crate) fn start_workers(&mut self, n: usize) -> Result<(), String> {
        for _ in 0..n {
            let child = self
                .spawner
                .spawn("worker", &[("OBJECTSYNC__HTTP__PORT", "0")])
                .map_err(|e| e.to_string())?;
            self.workers.push(child);
        }
        Ok(())
    }

    /// SIGTERM to every worker, then wait for them.
    pub(crate) async fn stop_workers(&mut self) {
        services::terminate(&mut self.workers, STOP_GRACE).await;
        self.workers.clear();
    }

    pub(crate) async fn stop(&mut self) {
        self.stop_workers().await;
        services::terminate(std::slice::from_mut(&mut self.ingest), STOP_GRACE).await;
    }

    pub(crate) fn pids(&self) -> (Option<u32>, Vec<u32>) {
        (
            self.ingest.id(),
            self.workers.iter().filter_map(Child::id).collect(),
        )
    }
}

/// Peak resident set sizes seen, in KiB.
#[derive(Default)]
pub(crate) struct PeakRss {
    pub(crate) ingest: AtomicU64,
    pub(crate) worker: AtomicU64,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples every 100 ms until aborted.
pub(crate) async fn sample_rss(pids: (Option<u32>, Vec<u32>), peak: Arc<PeakRss>) {
    loop {
        if let Some(kib) = pids.0.and_then(rss_kib) {
            peak.ingest.fetch_max(kib, Ordering::Relaxed);
        }
        for pid in &pids.1 {
            if let Some(kib) = rss_kib(*pid) {
                peak.worker.fetch_max(kib, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
