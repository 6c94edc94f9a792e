//! The whole system as it runs in production: ingest and the workers as
//! separate processes (this binary in its hidden `ingest` and `worker`
//! modes), so that each can be measured, and stopped, on its own.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use objectsync_infra::Settings;
use tokio::process::{Child, Command};

pub(crate) struct System {
    pub(crate) address: String,
    exe: PathBuf,
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    ingest: Child,
    workers: Vec<Child>,
    spawned: usize,
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl System {
    pub(crate) async fn start(
        settings: &Settings,
        admin_token: &str,
        workers: usize,
    ) -> Result<Self, String> {
        let port = free_port().map_err(|e| e.to_string())?;
        let log_dir =
            std::env::temp_dir().join(format!("objectsync-bench-{}", settings.amqp.prefix));
        std::fs::create_dir_all(&log_dir).map_err(|e| e.to_string())?;
        let env = vec![
            ("DATABASE_URL".into(), settings.database.url.clone()),
            ("AMQP_URL".into(), settings.amqp.url.clone()),
            (
                "OBJECTSYNC__AMQP__PREFIX".into(),
                settings.amqp.prefix.clone(),
            ),
            ("OBJECTSYNC__ADMIN__TOKEN".into(), admin_token.into()),
            ("OBJECTSYNC__LOG__FORMAT".into(), "json".into()),
            (
                "RUST_LOG".into(),
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ];
        let mut system = Self {
            address: format!("http://127.0.0.1:{port}"),
            exe: std::env::current_exe().map_err(|e| e.to_string())?,
            env,
            log_dir,
            ingest: Command::new("true").spawn().map_err(|e| e.to_string())?,
            workers: Vec::new(),
            spawned: 0,
        };
        system.ingest = system
            .spawn("ingest", &[("OBJECTSYNC__HTTP__PORT", &port.to_string())])
            .map_err(|e| e.to_string())?;
        system.wait_healthy().await?;
        system.start_workers(workers)?;
        Ok(system)
    }

    fn spawn(&mut self, mode: &str, extra: &[(&str, &str)]) -> std::io::Result<Child> {
        self.spawned += 1;
        let log = std::fs::File::create(self.log_dir.join(format!("{mode}-{}.log", self.spawned)))?;
        Command::new(&self.exe)
            .arg(mode)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
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
            self.log_dir.display()
        ))
    }

    pub(crate) fn start_workers(&mut self, n: usize) -> Result<(), String> {
        for _ in 0..n {
            let child = self
                .spawn("worker", &[("OBJECTSYNC__HTTP__PORT", "0")])
                .map_err(|e| e.to_string())?;
            self.workers.push(child);
        }
        Ok(())
    }

    /// SIGTERM to every worker, then wait for them.
    pub(crate) async fn stop_workers(&mut self) {
        stop(&mut self.workers).await;
    }

    pub(crate) async fn stop(&mut self) {
        self.stop_workers().await;
        stop(std::slice::from_mut(&mut self.ingest)).await;
    }

    pub(crate) fn pids(&self) -> (Option<u32>, Vec<u32>) {
        (
            self.ingest.id(),
            self.workers.iter().filter_map(Child::id).collect(),
        )
    }
}

async fn stop(children: &mut [Child]) {
    for child in children.iter() {
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
    }
    for child in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
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
