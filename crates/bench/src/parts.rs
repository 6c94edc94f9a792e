//! CPU time by part of the system during a pass (Linux `/proc`): each
//! process's time before and after, the difference charged to its part —
//! PostgreSQL's sessions by whose they are (`application_name`: ingest's,
//! the workers', the rest), PostgreSQL's own processes, RabbitMQ, ingest,
//! the workers, the bench itself (the producers) and the rest of the
//! machine (processes that ended meanwhile, the kernel's own work).

use std::collections::HashMap;

use deadpool_postgres::Pool;

use crate::cpu::{TICKS, busy, name, own};
use crate::report::CpuSplit;

/// Names of RabbitMQ's processes: the Erlang VM and its helpers.
const RABBITMQ: [&str; 4] = ["beam.smp", "erl_child_setup", "epmd", "inet_gethost"];

/// What a process is, as far as its name and title tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A PostgreSQL backend serving a client: its title names the client's
    /// address and port (`… 127.0.0.1(52974) …`).
    Session,
    /// One of PostgreSQL's own processes (their titles name their role).
    Server,
    RabbitMq,
    Other,
}

/// Every process's CPU seconds, and the machine's busy seconds.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    machine: f64,
    processes: HashMap<u32, (Kind, f64)>,
}

/// Now; `None` where `/proc` does not tell.
pub(crate) fn snapshot() -> Option<Snapshot> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let machine = busy(stat.lines().next()?)? as f64 / TICKS;
    let mut processes = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(name), Some(ticks)) = (name(&stat), own(&stat)) else {
            continue;
        };
        let kind = if name == "postgres" {
            let title = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let title = String::from_utf8_lossy(&title);
            if title.contains('(') && title.contains(')') {
                Kind::Session
            } else {
                Kind::Server
            }
        } else if RABBITMQ.contains(&name) {
            Kind::RabbitMq
        } else {
            Kind::Other
        };
        processes.insert(pid, (kind, ticks as f64 / TICKS));
    }
    Some(Snapshot { machine, processes })
}

/// Whose PostgreSQL sessions are, by backend pid: ingest's and the
/// workers' name themselves after their binary (`objectsync-ingest/…`,
/// `objectsync-worker/…`); any other is charged to the rest.
async fn owners(pool: &Pool) -> HashMap<u32, Owner> {
    let Ok(client) = pool.get().await else {
        return HashMap::new();
    };
    let rows = client
        .query(
            "select pid, application_name from pg_stat_activity where pid is not null",
            &[],
        )
        .await
        .unwrap_or_default();
    rows.iter()
        .filter_map(|r| {
            let pid = u32::try_from(r.get::<_, i32>(0)).ok()?;
            let app: Option<&str> = r.get(1);
            let owner = match app.unwrap_or("") {
                a if a.starts_with("objectsync-ingest") => Owner::Ingest,
                "objectsync-worker/apply" => Owner::Workers,
                a if a.starts_with("objectsync-worker") => Owner::WorkerMonitors,
                _ => Owner::Other,
            };
            Some((pid, owner))
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Ingest,
    /// The workers' batches: `objectsync-worker/apply`.
    Workers,
    /// The workers' monitors, event relay, webhook sender and sweeper.
    WorkerMonitors,
    Other,
}

/// What each part spent since `start`, in milliseconds per batch of
/// `batches`; `ingest` and `workers`: the bench's children.
pub(crate) async fn spent(
    pool: &Pool,
    start: Option<Snapshot>,
    ingest: Option<u32>,
    workers: &[u32],
    batches: usize,
) -> Option<CpuSplit> {
    let start = start?;
    let owners = owners(pool).await;
    let end = snapshot()?;
    let me = std::process::id();
    let mut s = CpuSplit::default();
    for (pid, &(kind, secs)) in &end.processes {
        let before = start.processes.get(pid).map_or(0.0, |p| p.1);
        let used = secs - before;
        let part = if *pid == me {
            &mut s.producers
        } else if Some(*pid) == ingest {
            &mut s.ingest
        } else if workers.contains(pid) {
            &mut s.workers
        } else {
            match (kind, owners.get(pid)) {
                (Kind::Session, Some(Owner::Ingest)) => &mut s.postgres_ingest,
                (Kind::Session, Some(Owner::Workers)) => &mut s.postgres_workers,
                (Kind::Session, Some(Owner::WorkerMonitors)) => &mut s.postgres_monitors,
                (Kind::Session, _) => &mut s.postgres_other,
                (Kind::Server, _) => &mut s.postgres_server,
                (Kind::RabbitMq, _) => &mut s.rabbitmq,
                (Kind::Other, _) => continue,
            }
        };
        *part += used;
    }
    s.other = (end.machine - start.machine) - s.total();
    Some(s.per_batch(batches))
}

/// Says what the pass `label` cost by part, when it was measured.
pub(crate) fn report(label: &str, cpu: Option<&CpuSplit>) {
    if let Some(c) = cpu {
        crate::progress(&format!(
            "{label}: CPU per 1,000-record batch: {}",
            c.describe()
        ));
    }
}
