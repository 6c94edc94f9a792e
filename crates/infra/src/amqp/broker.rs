//! The broker connection of a process: one live connection to one node of
//! the cluster, re-established on demand after it died, to the next node
//! of the list (see `AmqpSettings::urls`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

use super::node::{AmqpUrlError, Node};
use super::topology::Topology;
use crate::settings::AmqpSettings;

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The nodes of `settings`, in the order they are tried; a URL that cannot
/// be used is an error now rather than a retry forever.
pub fn nodes(settings: &AmqpSettings) -> Result<Vec<Node>, AmqpUrlError> {
    if settings.urls.is_empty() {
        return Err(AmqpUrlError::NoUrl);
    }
    settings.urls.iter().map(Node::parse).collect()
}

/// What a failed `lapin` call says, without lapin's "IO error: " in front
/// of an I/O error (whose own words, a certificate's problem say, are what
/// the reader needs).
pub fn describe(e: &lapin::Error) -> String {
    match e.kind() {
        lapin::ErrorKind::IOError(io) => io.to_string(),
        _ => e.to_string(),
    }
}

/// No node of the list could be connected to: each one's URL (password
/// replaced) and why.
#[derive(Debug)]
struct Unreachable(Vec<(String, String)>);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [(url, why)] => write!(f, "RabbitMQ at {url}: {why}"),
            tried => {
                f.write_str("no RabbitMQ node answered")?;
                for (i, (url, why)) in tried.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { "; " };
                    write!(f, "{sep}{url}: {why}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Unreachable {}

impl From<Unreachable> for lapin::Error {
    fn from(e: Unreachable) -> Self {
        std::io::Error::other(e).into()
    }
}

/// Opens a connection to `node` within [`CONNECT_TIMEOUT`]: a node that
/// accepts TCP but does not finish the handshake (still starting, or
/// blocked) must not hang callers.
async fn open(node: &Node, name: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    tokio::time::timeout(CONNECT_TIMEOUT, node.connect(props))
        .await
        .map_err(|_| {
            lapin::Error::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "RabbitMQ did not complete the connection in time",
            ))
        })?
}

/// A connection to the first node of `settings` that answers, without
/// the topology: for tools and tests (services use a [`Broker`]).
pub async fn connect(settings: &AmqpSettings, name: &str) -> lapin::Result<Connection> {
    let nodes = nodes(settings).map_err(std::io::Error::other)?;
    let mut tried = Vec::new();
    for node in &nodes {
        match open(node, name).await {
            Ok(conn) => return Ok(conn),
            Err(e) => tried.push((node.shown().to_owned(), describe(&e))),
        }
    }
    Err(Unreachable(tried).into())
}

/// The live connection and its node; without one, the node the next
/// attempt starts from.
#[derive(Default)]
struct Current {
    conn: Option<Arc<Connection>>,
    node: usize,
}

/// A broker connection that reconnects, to the next node, when asked for
/// after it died.
///
/// lapin's own auto-recovery is not relied on: the broker hands out the
/// live connection and, when it has died, opens a new one (and re-declares
/// the topology) under a lock, so callers see either a working connection
/// or an error they can turn into a 503 or a retry. Publishes in flight on
/// the lost connection get no confirm, so their batches are answered 503,
/// never 202; deliveries not acknowledged on it go back to their queues.
pub struct Broker {
    nodes: Vec<Node>,
    name: String,
    topology: Topology,
    current: Mutex<Current>,
    reconnecting: tokio::sync::Mutex<()>,
}

impl Broker {
    /// Reads the URLs (and their TLS files) now; does not connect yet: the
    /// first [`Broker::connection`] does.
    pub fn new(settings: &AmqpSettings, name: &str) -> Result<Self, AmqpUrlError> {
        Ok(Self {
            nodes: nodes(settings)?,
            name: name.to_owned(),
            topology: Topology::new(settings),
            current: Mutex::new(Current::default()),
            reconnecting: tokio::sync::Mutex::new(()),
        })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self) -> Option<Arc<Connection>> {
        let current = self.current();
        current
            .conn
            .as_ref()
            .filter(|c| c.status().connected())
            .cloned()
    }

    /// The live connection, opening a new one (and declaring the topology on
    /// it) if there is none: after a lost connection, to the next node of
    /// the list first, then the ones after it, round to the lost one.
    pub async fn connection(&self) -> lapin::Result<Arc<Connection>> {
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let _guard = self.reconnecting.lock().await;
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let n = self.nodes.len();
        let start = {
            let mut current = self.current();
            match current.conn.take() {
                Some(_) => {
                    let lost = &self.nodes[current.node];
                    tracing::warn!(connection = %self.name, node = lost.shown(), "lost the connection to RabbitMQ");
                    (current.node + 1) % n
                }
                None => current.node,
            }
        };
        let mut tried = Vec::new();
        for i in (0..n).map(|k| (start + k) % n) {
            let node = &self.nodes[i];
            match self.open_declared(node).await {
                Ok(conn) => {
                    tracing::info!(connection = %self.name, node = node.shown(), "connected to RabbitMQ");
                    let conn = Arc::new(conn);
                    *self.current() = Current {
                        conn: Some(conn.clone()),
                        node: i,
                    };
                    return Ok(conn);
                }
                Err(e) => tried.push((node.shown().to_owned(), describe(&e))),
            }
        }
        self.current().node = start;
        Err(Unreachable(tried).into())
    }

    /// A connection to `node` with the topology declared on it.
    async fn open_declared(&self, node: &Node) -> lapin::Result<Connection> {
        let conn = open(node, &self.name).await?;
        // Bounded like the connection: the reconnect lock is held meanwhile,
        // and every request needing the broker waits behind it.
        let declared = tokio::time::timeout(CONNECT_TIMEOUT, self.topology.declare(&conn))
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "RabbitMQ did not answer the topology's declarations in time",
                )
                .into())
            });
        if let Err(e) = declared {
            let close = conn.close(200, "topology not declared".into());
            let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
            return Err(e);
        }
        Ok(conn)
    }

    /// Closes the connection, if any (graceful shutdown), waiting for the
    /// broker's answer [`CONNECT_TIMEOUT`] at most: a shutdown never hangs
    /// on a broker that went quiet.
    pub async fn close(&self) {
        let conn = self.current().conn.take();
        if let Some(conn) = conn {
            let close = conn.close(200, "shutting down".into());
            let _ = tokio::time::timeout(CONNECT_TIMEOUT, close).await;
        }
    }
}
