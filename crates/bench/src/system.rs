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
    /// The port of each worker's `/metrics`, for [`System::order_waits`].
    worker_ports: Vec<u16>,
}

/// Batches that waited for an older batch on the same records (acceptance
/// order), and how long they waited in all, as the workers count them.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct OrderWaits {
    pub(crate) batches: u64,
    pub(crate) seconds: f64,
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
        Self::start_with(settings, admin_token, workers, &[]).await
    }

    /// Like [`System::start`], with more environment variables for every
    /// process (settings the bench's `Settings` do not carry to children).
    pub(crate) async fn start_with(
        settings: &Settings,
        admin_token: &str,
        workers: usize,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let port = free_port().map_err(|e| e.to_string())?;
        let log_dir =
            std::env::temp_dir().join(format!("objectsync-bench-{}", settings.amqp.prefix));
        let mut spawner = Spawner::new(settings, log_dir, "warn")
            .map_err(|e| e.to_string())?
            .with_env("OBJECTSYNC__ADMIN__TOKEN", admin_token);
        for (key, value) in env {
            spawner = spawner.with_env(key, value);
        }
        let ingest = spawner
            .spawn("ingest", &[("OBJECTSYNC__HTTP__PORT", &port.to_string())])
            .map_err(|e| e.to_string())?;
        let mut system = Self {
            address: format!("http://127.0.0.1:{port}"),
            spawner,
            ingest,
            workers: Vec::new(),
            worker_ports: Vec::new(),
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
            let port = free_port().map_err(|e| e.to_string())?;
            let child = self
                .spawner
                .spawn("worker", &[("OBJECTSYNC__HTTP__PORT", &port.to_string())])
                .map_err(|e| e.to_string())?;
            self.workers.push(child);
            self.worker_ports.push(port);
        }
        Ok(())
    }

    /// The running workers' order waits so far (their
    /// `objectsync_order_wait_seconds` histograms, summed).
    pub(crate) async fn order_waits(&self) -> Result<OrderWaits, String> {
        let (batches, seconds) = self.histogram("objectsync_order_wait_seconds").await?;
        Ok(OrderWaits { batches, seconds })
    }

    /// The count and sum of histogram `name` over the running workers.
    pub(crate) async fn histogram(&self, name: &str) -> Result<(u64, f64), String> {
        let client = reqwest::Client::new();
        let (mut count, mut sum) = (0, 0.0);
        for port in &self.worker_ports {
            let text = client
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
                .map_err(|e| format!("worker metrics: {e}"))?
                .text()
                .await
                .map_err(|e| format!("worker metrics: {e}"))?;
            let (c, s) = parse_histogram(&text, name);
            count += c;
            sum += s;
        }
        Ok((count, sum))
    }

    /// SIGTERM to every worker, then wait for them; what did not stop
    /// cleanly.
    pub(crate) async fn stop_workers(&mut self) -> Vec<String> {
        let problems = services::terminate(&mut self.workers, STOP_GRACE).await;
        self.workers.clear();
        self.worker_ports.clear();
        problems
    }

    /// Stops every child; removes their logs when all of them stopped
    /// cleanly, and says where they are kept otherwise.
    pub(crate) async fn stop(&mut self) {
        let mut problems = self.stop_workers().await;
        problems
            .extend(services::terminate(std::slice::from_mut(&mut self.ingest), STOP_GRACE).await);
        let logs = self.spawner.log_dir();
        if problems.is_empty() {
            let _ = std::fs::remove_dir_all(logs);
        } else {
            eprintln!(
                "[bench] {}; the services' logs are kept in {}",
                problems.join("; "),
                logs.display()
            );
        }
    }

    pub(crate) fn pids(&self) -> (Option<u32>, Vec<u32>) {
        (
            self.ingest.id(),
            self.workers.iter().filter_map(Child::id).collect(),
        )
    }
}

/// Histogram `name`'s count and sum in a Prometheus text page (zero when
/// nothing was recorded yet: the histogram is not there).
fn parse_histogram(text: &str, name: &str) -> (u64, f64) {
    let value = |suffix: &str| {
        let prefix = format!("{name}_{suffix} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (value("count") as u64, value("sum"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_waits_are_read_from_the_histogram() {
        let page = "# TYPE objectsync_order_wait_seconds histogram
objectsync_order_wait_seconds_bucket{le=\"0.005\"} 3
objectsync_order_wait_seconds_sum 0.75
objectsync_order_wait_seconds_count 12
";
        let name = "objectsync_order_wait_seconds";
        assert_eq!(parse_histogram(page, name), (12, 0.75));
        assert_eq!(parse_histogram("other_metric 1\n", name), (0, 0.0));
    }
}
