//! `--cluster`: three scratch RabbitMQ nodes on loopback (see
//! `objectsync_testkit::rabbitmq`) joined into one cluster with RabbitMQ's
//! own `rabbitmqctl join_cluster`, and what the suite asks of them: which
//! node leads which queue, and whether every replica is back.
//!
//! The nodes place new queues' leaders with `queue_leader_locator =
//! balanced`, so that they are spread over the nodes; a quorum queue gets a
//! replica on three nodes by RabbitMQ's default initial group size (three),
//! so the queues are declared as on one node (see the README's "A RabbitMQ
//! cluster"). The machine's own RabbitMQ is never touched.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use objectsync_testkit::rabbitmq::{Listener, ScratchNode};
use serde_json::Value;

/// What every node's `rabbitmq.conf` adds.
const NODE_CONFIG: &str = "queue_leader_locator = balanced\n";

/// One queue as the cluster sees it.
#[derive(Debug, Clone)]
pub(crate) struct QueueState {
    pub(crate) name: String,
    pub(crate) leader: String,
    pub(crate) members: Vec<String>,
    pub(crate) online: Vec<String>,
}

/// Three (or `n`) nodes in one cluster, stopped and removed on drop.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<ScratchNode>,
}

impl Cluster {
    /// Starts `n` nodes side by side, then joins the others to the first.
    /// Blocking (tens of seconds).
    pub(crate) fn start(n: usize) -> Result<Self, String> {
        let first = ScratchNode::start(Listener::Plain, None, NODE_CONFIG);
        let cookie = first.cookie().to_owned();
        let others: Vec<ScratchNode> = std::thread::scope(|scope| {
            let started: Vec<_> = (1..n)
                .map(|_| {
                    let cookie = &cookie;
                    scope.spawn(move || {
                        ScratchNode::start(Listener::Plain, Some(cookie), NODE_CONFIG)
                    })
                })
                .collect();
            started
                .into_iter()
                .map(|t| t.join().expect("a node started"))
                .collect()
        });
        let cluster = Self {
            nodes: std::iter::once(first).chain(others).collect(),
        };
        let leader = cluster.nodes[0].name().to_owned();
        for node in &cluster.nodes[1..] {
            node.ctl(&["stop_app"])?;
            node.ctl(&["join_cluster", &leader])?;
            node.ctl(&["start_app"])?;
        }
        Ok(cluster)
    }

    /// The AMQP URL of every node, in order.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| n.url("amqp", "127.0.0.1", ""))
            .collect()
    }

    /// The nodes' names, in order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name().to_owned()).collect()
    }

    /// The queues whose names start with `prefix`, as node `via` sees them.
    pub(crate) fn queues(&self, via: usize, prefix: &str) -> Result<Vec<QueueState>, String> {
        let out = self.nodes[via].ctl(&[
            "-q",
            "-t",
            "10",
            "list_queues",
            "name",
            "leader",
            "members",
            "online",
            "--formatter",
            "json",
        ])?;
        let rows: Vec<Value> =
            serde_json::from_str(&out).map_err(|e| format!("list_queues: {e}: {out}"))?;
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(rows
            .iter()
            .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .map(|r| QueueState {
                name: r["name"].as_str().unwrap_or_default().to_owned(),
                leader: r["leader"].as_str().unwrap_or_default().to_owned(),
                members: names(&r["members"]),
                online: names(&r["online"]),
            })
            .collect())
    }

    /// How many queues each node leads.
    pub(crate) fn leaders(queues: &[QueueState]) -> BTreeMap<String, usize> {
        let mut led = BTreeMap::new();
        for q in queues {
            *led.entry(q.leader.clone()).or_insert(0) += 1;
        }
        led
    }

    /// Polls (through node `via`) until `done` holds for the queues of
    /// `prefix`, for `limit` at most from `since`: how long after `since`
    /// it was seen to hold (to within the second a `rabbitmqctl` call
    /// takes), or `None`.
    pub(crate) fn wait_for(
        &self,
        via: usize,
        prefix: &str,
        since: Instant,
        limit: Duration,
        done: impl Fn(&[QueueState]) -> bool,
    ) -> Option<Duration> {
        while since.elapsed() < limit {
            if let Ok(queues) = self.queues(via, prefix)
                && !queues.is_empty()
                && done(&queues)
            {
                return Some(since.elapsed());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        None
    }
}

/// The cluster as the suite found it once ingest had declared the queues.
pub(crate) struct Formed {
    /// Starting the nodes and joining them.
    pub(crate) took: Duration,
    pub(crate) nodes: usize,
    pub(crate) queues: usize,
    /// Queues each node leads.
    pub(crate) leaders: BTreeMap<String, usize>,
}

impl Formed {
    /// Reads the queues of `prefix`; an error unless each has a replica on
    /// every one of the `nodes` nodes.
    pub(crate) fn survey(
        cluster: &Cluster,
        took: Duration,
        prefix: &str,
        nodes: usize,
    ) -> Result<Self, String> {
        let queues = cluster.queues(0, prefix)?;
        if queues.is_empty() {
            return Err(format!("no queue of {prefix} on the cluster"));
        }
        if let Some(q) = queues.iter().find(|q| q.members.len() != nodes) {
            return Err(format!(
                "queue {} has {} replicas ({:?}), not {nodes}",
                q.name,
                q.members.len(),
                q.members
            ));
        }
        Ok(Self {
            took,
            nodes,
            queues: queues.len(),
            leaders: Cluster::leaders(&queues),
        })
    }

    pub(crate) fn describe(&self) -> String {
        let led: Vec<String> = self.leaders.values().map(usize::to_string).collect();
        format!(
            "{} nodes started and clustered in {:.1} s; {} quorum queues, each with a replica \
             on every node; leaders per node {}",
            self.nodes,
            self.took.as_secs_f64(),
            self.queues,
            led.join("/")
        )
    }
}
