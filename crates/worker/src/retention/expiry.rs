//! Removing an expired partition of `processes` (see
//! `objectsync_store::partitions`): it is detached, checked again — a batch
//! whose transaction was still running when it was judged would show now
//! —, its processes subtracted from `process_counts`, and dropped, with its
//! rejections, in one transaction.
//!
//! How it is detached depends on who the sweeper runs as ([`Detach`]). The
//! schema's owner detaches `concurrently` and blocks no one, except on
//! Citus, which refuses a concurrent detach of a distributed table. The
//! app role (and the owner on Citus),
//! which may change no table, calls the functions of migration V48: the
//! detach then takes an ACCESS EXCLUSIVE lock on `processes` and
//! `process_errors` for its catalog changes, waiting 500 ms at most for
//! each, and checks expiry again under it; a partition whose locks were not
//! granted in time is tried again at the next sweep.

use std::time::Instant;

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use objectsync_infra::settings::RetentionSettings;
use objectsync_store::partitions::{self, Partition};

use crate::error::WorkerError;

/// How this sweeper's session detaches partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Detach {
    /// It owns the tables: `detach partition … concurrently`.
    Concurrently,
    /// The app role, and anyone on Citus: V48's functions, under a short
    /// lock.
    Locked,
}

impl Detach {
    /// Which one the session of `client` may use (`citus`: the database is
    /// a Citus coordinator).
    pub(super) async fn of(client: &Client, citus: bool) -> Result<Self, WorkerError> {
        Ok(if !citus && partitions::owns_tables(client).await? {
            Self::Concurrently
        } else {
            Self::Locked
        })
    }
}

/// Drops `p` if it is expired; whether it did.
pub(super) async fn expire(
    client: &mut Client,
    how: Detach,
    p: &Partition,
    cutoff: DateTime<Utc>,
) -> Result<bool, WorkerError> {
    let ends = {
        let tx = client.transaction().await?;
        partitions::index_only(&tx).await?;
        let ends = partitions::ends(&tx, &p.processes()).await?;
        tx.commit().await?;
        ends
    };
    if !ends.before(cutoff) {
        return Ok(false);
    }
    let started = Instant::now();
    match how {
        Detach::Concurrently => partitions::detach(&*client, &p.suffix).await?,
        Detach::Locked => match partitions::detach_expired(&*client, &p.suffix, cutoff).await {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) if e.is_timeout() => {
                tracing::info!(
                    partition = %p.processes(),
                    "the locks to detach the partition were not granted in time; tried again at the next sweep"
                );
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        },
    }
    if drop_detached(client, &p.suffix, cutoff).await? {
        metrics::histogram!("objectsync_retention_partition_seconds")
            .record(started.elapsed().as_secs_f64());
        return Ok(true);
    }
    match how {
        Detach::Concurrently => {
            partitions::reattach(&*client, p).await?;
            tracing::warn!(
                partition = %p.processes(),
                "a process of the partition was still open or ended lately once detached; attached again"
            );
        }
        // Checked under the lock with the same cutoff: not expected. The
        // next sweep drops it with its later cutoff.
        Detach::Locked => tracing::warn!(
            partition = %p.processes(),
            "a detached partition no longer qualified; left for the next sweep"
        ),
    }
    Ok(false)
}

/// The detached partitions of `suffix` dropped in one transaction, with
/// their processes subtracted from the counts, and a log line saying so;
/// whether they were.
async fn drop_detached(
    client: &mut Client,
    suffix: &str,
    cutoff: DateTime<Utc>,
) -> Result<bool, WorkerError> {
    let tx = client.transaction().await?;
    let Some(dropped) = partitions::drop_detached(&tx, suffix, cutoff).await? else {
        return Ok(false);
    };
    tx.commit().await?;
    for (what, n) in [
        ("processes", dropped.processes),
        ("rejections", dropped.rejections),
    ] {
        metrics::counter!("objectsync_retention_removed_total", "what" => what)
            .increment(n.max(0) as u64);
    }
    metrics::counter!("objectsync_retention_removed_total", "what" => "partitions").increment(1);
    tracing::info!(
        partition = %format!("processes_{suffix}"),
        processes = dropped.processes,
        rejections = dropped.rejections,
        "expired partition of processes dropped"
    );
    Ok(true)
}

/// What an earlier sweep left half done (a timeout, a crash): detaches
/// still pending are finished, detached partitions dropped or, if their
/// processes are not all expired, a detached partition of rejections
/// attached again beside its processes.
pub(super) async fn finish_interrupted(
    client: &mut Client,
    how: Detach,
    s: &RetentionSettings,
    cutoff: DateTime<Utc>,
) -> Result<(), WorkerError> {
    let (attached, pending) = partitions::list(&*client).await?;
    for suffix in &pending {
        match how {
            Detach::Concurrently => partitions::finalize(&*client, suffix).await?,
            // Finalizes a pending detach, whatever the cutoff.
            Detach::Locked => {
                partitions::detach_expired(&*client, suffix, cutoff).await?;
            }
        }
    }
    let (processes, errors) = partitions::leftovers(&*client).await?;
    for suffix in &processes {
        if s.processes_secs == 0 || !drop_detached(client, suffix, cutoff).await? {
            tracing::error!(
                partition = %format!("processes_{suffix}"),
                "a detached partition of processes holds processes not expired; left for an operator"
            );
        }
    }
    for suffix in errors.iter().filter(|e| !processes.contains(e)) {
        match attached.iter().find(|p| &p.suffix == suffix) {
            Some(p) if how == Detach::Concurrently => partitions::reattach(&*client, p).await?,
            Some(_) => partitions::attach_errors(&*client, suffix).await?,
            // Its processes are gone: so are they.
            None => {
                let tx = client.transaction().await?;
                partitions::drop_detached(&tx, suffix, cutoff).await?;
                tx.commit().await?;
            }
        }
    }
    Ok(())
}
