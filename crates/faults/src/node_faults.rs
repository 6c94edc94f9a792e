//! The cluster's faults: twice, the node that leads the most queues is
//! SIGKILLed under load and restarted later (the second time, another node
//! than the first), with what the cluster took to recover: a leader for
//! every queue again, and every replica back once the node returned.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::cluster::{Cluster, QueueState};
use crate::load::Deadline;

/// How long the cluster may take to elect leaders, or to bring a returned
/// node's replicas back, before the suite calls it a failure.
const RECOVERY_LIMIT: Duration = Duration::from_secs(90);

/// Load after the last node is back, so that the cluster is seen whole
/// under load too.
const LOAD_AFTER: Duration = Duration::from_secs(5);

/// One node killed and restarted, and what was measured.
#[derive(Debug, Clone)]
pub(crate) struct NodeFault {
    pub(crate) node: String,
    /// Queues the node led when it was killed, of `queues`.
    pub(crate) led: usize,
    pub(crate) queues: usize,
    pub(crate) killed_at: DateTime<Utc>,
    /// From the kill until every queue had a leader on a live node.
    pub(crate) leaders_back: Option<Duration>,
    /// How long the restarted node took to accept connections.
    pub(crate) restart_took: Duration,
    /// From the restart until every queue had all its replicas online.
    pub(crate) replicas_back: Option<Duration>,
    pub(crate) error: Option<String>,
}

/// Kills at a sixth and at half of `duration` (from `start`), each node
/// staying down for a sixth, and each kill after the cluster is whole
/// again; holds the load open (`until`) until the second node is back, so
/// that both faults happen under load. Runs on a blocking thread (every
/// step is a process to wait for) and gives the cluster back.
pub(crate) async fn run(
    cluster: Cluster,
    prefix: String,
    start: tokio::time::Instant,
    duration: Duration,
    until: Arc<Deadline>,
) -> (Cluster, Vec<NodeFault>) {
    let begin = start.into_std();
    let down_for = duration / 6;
    tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        let mut faults = Vec::new();
        let mut spared = None;
        for kill in [1, 3] {
            sleep_until(begin + duration * kill / 6);
            let (fault, victim) = kill_and_restart(&mut cluster, &prefix, spared, down_for);
            spared = victim;
            faults.push(fault);
        }
        let end = (start + duration).max(tokio::time::Instant::now() + LOAD_AFTER);
        until.set(end);
        (cluster, faults)
    })
    .await
    .expect("the cluster's faults")
}

fn sleep_until(at: Instant) {
    if let Some(wait) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

/// The live node other than `victim` to ask about the queues.
fn witness(cluster: &Cluster, victim: usize) -> usize {
    (victim + 1) % cluster.nodes.len()
}

/// Kills the node that leads the most queues (other than `spared`),
/// waits for new leaders, restarts it `down_for` after the kill, waits for
/// its replicas; also returns which node it was.
fn kill_and_restart(
    cluster: &mut Cluster,
    prefix: &str,
    spared: Option<usize>,
    down_for: Duration,
) -> (NodeFault, Option<usize>) {
    let names = cluster.names();
    let queues = match cluster.queues(spared.map_or(0, |s| witness(cluster, s)), prefix) {
        Ok(q) => q,
        Err(e) => return (failed(format!("could not list the queues: {e}")), None),
    };
    let led = Cluster::leaders(&queues);
    let Some(victim) = (0..names.len())
        .filter(|i| Some(*i) != spared)
        .max_by_key(|i| led.get(&names[*i]).copied().unwrap_or(0))
    else {
        return (failed("no node to kill".into()), None);
    };
    let name = names[victim].clone();
    let via = witness(cluster, victim);
    eprintln!(
        "[faults] SIGKILL RabbitMQ node {name}, leader of {} of {} queues",
        led.get(&name).copied().unwrap_or(0),
        queues.len()
    );
    let killed_at = Utc::now();
    let killed = Instant::now();
    cluster.nodes[victim].kill();
    let elected = |qs: &[QueueState]| {
        qs.iter()
            .all(|q| q.leader != name && q.online.contains(&q.leader))
    };
    let leaders_back = cluster.wait_for(via, prefix, killed, RECOVERY_LIMIT, elected);
    eprintln!("[faults] every queue has a leader again after {leaders_back:.1?}");
    sleep_until(killed + down_for);
    eprintln!("[faults] restarting RabbitMQ node {name}");
    let restarting = Instant::now();
    cluster.nodes[victim].restart_ahead();
    let restart_took = restarting.elapsed();
    if restart_took > Duration::from_secs(20) {
        eprintln!(
            "[faults] {name} was slow to restart; the end of its log:\n{}",
            cluster.nodes[victim].log()
        );
    }
    let whole = |qs: &[QueueState]| {
        qs.iter()
            .all(|q| q.online.contains(&name) && q.online.len() == q.members.len())
    };
    let replicas_back = cluster.wait_for(via, prefix, restarting, RECOVERY_LIMIT, whole);
    eprintln!(
        "[faults] {name} accepts connections after {restart_took:.1?}, all replicas online after {replicas_back:.1?}"
    );
    let error = match (leaders_back, replicas_back) {
        (None, _) => Some(format!(
            "queues led by {name} had no leader after {RECOVERY_LIMIT:?}"
        )),
        (_, None) => Some(format!(
            "{name}'s replicas were not back after {RECOVERY_LIMIT:?}"
        )),
        _ => None,
    };
    let fault = NodeFault {
        node: name.clone(),
        led: led.get(&name).copied().unwrap_or(0),
        queues: queues.len(),
        killed_at,
        leaders_back,
        restart_took,
        replicas_back,
        error,
    };
    (fault, Some(victim))
}

fn failed(error: String) -> NodeFault {
    NodeFault {
        node: String::new(),
        led: 0,
        queues: 0,
        killed_at: Utc::now(),
        leaders_back: None,
        restart_took: Duration::ZERO,
        replicas_back: None,
        error: Some(error),
    }
}
