//! RabbitMQ: the topology both binaries declare, the nodes the URLs name
//! (plain or TLS), and a connection that is re-established on demand after
//! the broker goes away, to the next node of a cluster.

mod broker;
mod inbox;
mod node;
pub mod reconnect;
mod tls;
mod topology;

pub use broker::{Broker, connect, describe, nodes};
pub use node::{AmqpUrlError, Node};
pub use topology::{Topology, inspect};
pub(crate) use topology::{declare_queue, quorum};
