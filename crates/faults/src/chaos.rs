//! The faults: a worker SIGKILLed (and replaced) every few seconds, the
//! inbox's ingest replica likewise, half-way between two worker kills and
//! every other time, and once each, a RabbitMQ restart and a PostgreSQL
//! restart, by shell commands that default to this kind of machine's and
//! can be replaced.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::process::Command;
use tokio::time::Instant;

use crate::children::Children;

/// Restart RabbitMQ: stop the node, start it, wait until it serves.
pub const BROKER_RESTART: &str = "rabbitmqctl -q shutdown && rabbitmq-server -detached && \
     for i in $(seq 1 120); do rabbitmqctl -q await_startup >/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1";

/// Restart the PostgreSQL cluster.
pub const DATABASE_RESTART: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | tail -n 1) main restart";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    WorkerKill,
    IngestKill,
    BrokerRestart,
    DatabaseRestart,
}

#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub(crate) kind: Kind,
    pub(crate) at: DateTime<Utc>,
    /// How long the restart command took (zero for kills).
    pub(crate) took: Duration,
    pub(crate) error: Option<String>,
}

pub(crate) struct Schedule {
    pub(crate) kill_every: Duration,
    /// When to restart the broker / the database, from the start of load.
    pub(crate) broker_at: Option<Duration>,
    pub(crate) database_at: Option<Duration>,
    pub(crate) broker_cmd: String,
    pub(crate) database_cmd: String,
}

async fn shell(cmd: &str) -> Option<String> {
    match Command::new("sh").arg("-c").arg(cmd).output().await {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`{cmd}` exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("`{cmd}` could not run: {e}")),
    }
}

/// Injects faults from `start` until the deadline.
pub(crate) async fn run(
    workers: &mut Children,
    mut inbox: Option<&mut Children>,
    ledger: &crate::load::Ledger,
    schedule: &Schedule,
    start: Instant,
    until: &crate::load::Deadline,
) -> Vec<Fault> {
    let mut faults = Vec::new();
    let mut broker_due = schedule.broker_at.map(|d| start + d);
    let mut database_due = schedule.database_at.map(|d| start + d);
    let mut next_kill = start + schedule.kill_every;
    let mut next_ingest_kill = start + schedule.kill_every * 3 / 2;
    let mut kills = 0usize;
    loop {
        let now = Instant::now();
        if now >= until.get() {
            break;
        }
        for (due, kind, cmd, label) in [
            (
                &mut broker_due,
                Kind::BrokerRestart,
                &schedule.broker_cmd,
                "RabbitMQ",
            ),
            (
                &mut database_due,
                Kind::DatabaseRestart,
                &schedule.database_cmd,
                "PostgreSQL",
            ),
        ] {
            if due.is_some_and(|d| now >= d) {
                *due = None;
                let at = Utc::now();
                eprintln!("[faults] restarting {label}");
                let began = Instant::now();
                let error = shell(cmd).await;
                let took = began.elapsed();
                eprintln!(
                    "[faults] {label} restarted in {took:.1?}{}",
                    error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
                faults.push(Fault {
                    kind,
                    at,
                    took,
                    error,
                });
            }
        }
        if Instant::now() >= next_kill && workers.len() > 0 {
            let victim = (kills * 7 + 3) % workers.len();
            kills += 1;
            faults.push(kill(workers, victim, Kind::WorkerKill).await);
            next_kill += schedule.kill_every;
        }
        if let Some(replicas) = inbox.as_deref_mut().filter(|r| r.len() > 0)
            && Instant::now() >= next_ingest_kill
        {
            if ledger.inbox_in_flight.load(Ordering::Relaxed) > 0 {
                ledger
                    .inbox_kills_mid_message
                    .fetch_add(1, Ordering::Relaxed);
            }
            faults.push(kill(replicas, 0, Kind::IngestKill).await);
            next_ingest_kill += schedule.kill_every * 2;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    faults
}

/// SIGKILLs child `i` of `children`, starts its replacement, and says so.
async fn kill(children: &mut Children, i: usize, kind: Kind) -> Fault {
    let at = Utc::now();
    let error = children
        .kill_and_replace(i)
        .await
        .err()
        .map(|e| e.to_string());
    Fault {
        kind,
        at,
        took: Duration::ZERO,
        error,
    }
}
