//! Which queue a batch goes to (see `objectsync_infra::Topology` for the
//! two lanes).
//!
//! Read from the organization's newest open processes, in the transaction
//! that records the batch:
//! 1. if one of them is in a bulk queue, the batch goes there too — an
//!    organization with a backlog keeps its bulk queue until that backlog is
//!    gone, so its batches are delivered in about the order they were
//!    accepted (a batch that reached a worker long before an older one on
//!    the same records would wait for it, then give its place back);
//! 2. else, with fewer than `bulk_after` open, the express queue;
//! 3. else the organization's backlog starts: it is given the bulk queue
//!    with the fewest waiting messages (ties broken at random, not by id),
//!    so organizations with backlogs share a queue only when there are more
//!    of them than bulk queues.
//!
//! The express queue so holds at most `bulk_after` batches of any one
//! organization, plus the few that requests arriving together may add.

use objectsync_infra::{Broker, Topology};
use objectsync_model::OrgId;
use objectsync_store::GenericClient;
use objectsync_store::lanes;

/// Why a batch's queue could not be chosen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RouteError {
    #[error(transparent)]
    Store(#[from] objectsync_store::StoreError),
    #[error("broker: {0}")]
    Broker(lapin::Error),
}

/// The queue for the next batch of `org`, read in `tx`; a new backlog's
/// choice is made under a lock held until `tx` ends.
pub(crate) async fn route(
    tx: &impl GenericClient,
    broker: &Broker,
    org: OrgId,
) -> Result<String, RouteError> {
    let topology = broker.topology();
    let n = i64::from(topology.bulk_after);
    let open = lanes::open_queues(tx, org, n).await?;
    if let Some(queue) = bulk_of(topology, org, &open) {
        return Ok(routed(queue, "bulk"));
    }
    if (open.len() as i64) < n {
        return Ok(routed(topology.express.clone(), "express"));
    }
    // A backlog starts. Requests of this organization that got here
    // together choose one at a time, and each one after the first finds
    // the queue the first chose (committed when the lock is released).
    lanes::lock_choice(tx, org).await?;
    let open = lanes::open_queues(tx, org, n).await?;
    if let Some(queue) = bulk_of(topology, org, &open) {
        return Ok(routed(queue, "bulk"));
    }
    let queue = least_loaded(broker).await.map_err(RouteError::Broker)?;
    tracing::info!(
        org_id = org.get(),
        open = open.len(),
        %queue,
        "the organization has a backlog: its batches go to a bulk queue until it is applied"
    );
    metrics::counter!("objectsync_bulk_queues_assigned_total").increment(1);
    Ok(routed(queue, "bulk"))
}

fn routed(queue: String, lane: &'static str) -> String {
    metrics::counter!("objectsync_batches_routed_total", "lane" => lane).increment(1);
    queue
}

/// The bulk queue of the organization's open batches, if any is in one (a
/// batch accepted before queues were recorded is in its hash partition).
fn bulk_of(topology: &Topology, org: OrgId, open: &[Option<String>]) -> Option<String> {
    open.iter().find_map(|queue| match queue {
        None => Some(topology.hash_partition(org.get()).to_owned()),
        Some(q) if topology.is_bulk(q) => Some(q.clone()),
        Some(_) => None,
    })
}

/// The bulk queue with the fewest messages waiting, asked with a passive
/// declare of each on a channel of its own (only when a backlog starts).
async fn least_loaded(broker: &Broker) -> lapin::Result<String> {
    let partitions = &broker.topology().partitions;
    let conn = broker.connection().await?;
    let channel = conn.create_channel().await?;
    let mut depths = Vec::with_capacity(partitions.len());
    for queue in partitions {
        let declared = objectsync_infra::amqp::inspect(&channel, queue).await?;
        depths.push(declared.message_count());
    }
    let _ = channel.close(200, "OK".into()).await;
    let start = getrandom::u32().unwrap_or(0) as usize;
    Ok(partitions[pick(&depths, start)].clone())
}

/// The index of the smallest of `depths`, the first one found from `start`
/// on (wrapping) among equals.
fn pick(depths: &[u32], start: usize) -> usize {
    let n = depths.len();
    (0..n)
        .map(|i| (start + i) % n)
        .min_by_key(|&i| depths[i])
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emptiest_queue_wins_and_ties_go_to_the_first_from_start() {
        assert_eq!(pick(&[5, 0, 3], 0), 1);
        assert_eq!(pick(&[0, 0, 0], 2), 2);
        assert_eq!(pick(&[0, 4, 0], 1), 2);
        assert_eq!(pick(&[7], 9), 0);
    }

    #[test]
    fn an_organization_keeps_the_bulk_queue_of_its_open_batches() {
        let settings = objectsync_infra::Settings::load_from(
            objectsync_infra::Role::Ingest,
            None,
            Default::default(),
        )
        .unwrap();
        let t = Topology::new(&settings.amqp);
        let org = OrgId(11);
        let express = Some(t.express.clone());
        let p5 = Some(t.partitions[5].clone());
        assert_eq!(bulk_of(&t, org, &[express.clone(), express.clone()]), None);
        assert_eq!(
            bulk_of(&t, org, &[express.clone(), p5]),
            Some(t.partitions[5].clone())
        );
        // Accepted before queues were recorded: in the hash partition.
        assert_eq!(
            bulk_of(&t, org, &[express, None]),
            Some(t.hash_partition(11).to_owned())
        );
        // A queue of another configuration is not a bulk queue of this one.
        assert_eq!(bulk_of(&t, org, &[Some("elsewhere.p1".into())]), None);
    }
}
