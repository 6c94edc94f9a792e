//! Removing the partitions of an expired range, two ways.
//!
//! A session that owns the tables ([`owns_tables`]: the schema's owner)
//! detaches with `detach partition … concurrently` ([`detach`],
//! [`finalize`], [`reattach`]), which blocks no reads or writes but cannot
//! run in a transaction, nor so in a function. The app role (migration
//! V39) may change no table: it calls the functions of migration V48,
//! which run with their owner's rights, take the number in the partitions'
//! names rather than a table name, and check that it names partitions of
//! `processes` and `process_errors` ([`detach_expired`], [`attach_errors`]).
//! Either way the detached partitions are dropped by V48's
//! `processes_drop_partition` ([`drop_detached`]), which counts them out
//! of `process_counts` in the same transaction.

use chrono::{DateTime, Utc};

use super::{Partition, checked, number};
use crate::{GenericClient, StoreResult};

/// Whether the session may change `processes` itself (it owns it, or is a
/// member of the role that does): then it detaches `concurrently`.
/// The app role does not; nor may it where it can still create tables in
/// `public` (PostgreSQL 14 and older, see migration V40).
pub async fn owns_tables(c: &impl GenericClient) -> StoreResult<bool> {
    Ok(crate::query_one(
        c,
        "select pg_has_role(relowner, 'usage') from pg_class where oid = 'processes'::regclass",
        &[],
    )
    .await?
    .get(0))
}

/// Whether `table` is a partition now (attached, or being detached).
async fn attached(c: &impl GenericClient, table: &str) -> StoreResult<bool> {
    Ok(crate::query_one(
        c,
        "select exists (select 1 from pg_inherits where inhrelid = to_regclass($1))",
        &[&table],
    )
    .await?
    .get(0))
}

/// Detaches both partitions of `suffix` from their tables, rejections first,
/// `concurrently`: each waits for the transactions that may use the
/// partitioned table and blocks none. Not in a transaction: call it on a
/// connection outside one. A partition already detached is skipped.
pub async fn detach(c: &impl GenericClient, suffix: &str) -> StoreResult<()> {
    let suffix = checked(suffix)?;
    for parent in ["process_errors", "processes"] {
        let table = format!("{parent}_{suffix}");
        if attached(c, &table).await? {
            c.batch_execute(&format!(
                "alter table {parent} detach partition {table} concurrently"
            ))
            .await?;
        }
    }
    Ok(())
}

/// Ends the `detach … concurrently` of both partitions of `suffix` that was
/// interrupted (a timeout, a crash). Not in a transaction.
pub async fn finalize(c: &impl GenericClient, suffix: &str) -> StoreResult<()> {
    let suffix = checked(suffix)?;
    for parent in ["process_errors", "processes"] {
        let table = format!("{parent}_{suffix}");
        let pending: bool = crate::query_one(
            c,
            "select exists (select 1 from pg_inherits
                             where inhrelid = to_regclass($1) and inhdetachpending)",
            &[&table],
        )
        .await?
        .get(0);
        if pending {
            c.batch_execute(&format!(
                "alter table {parent} detach partition {table} finalize"
            ))
            .await?;
        }
    }
    Ok(())
}

/// Attaches the detached partitions of `p` again (a process found open, or
/// ended too late, after it was detached). The check constraint that a
/// concurrent detach leaves on each spares the attach its scan.
pub async fn reattach(c: &impl GenericClient, p: &Partition) -> StoreResult<()> {
    for (parent, table) in [("process_errors", p.errors()), ("processes", p.processes())] {
        let exists: bool = crate::query_one(c, "select to_regclass($1) is not null", &[&table])
            .await?
            .get(0);
        if exists && !attached(c, &table).await? {
            c.batch_execute(&format!(
                "alter table {parent} attach partition {table} for values {}",
                p.bounds()
            ))
            .await?;
        }
    }
    Ok(())
}

/// What dropping a partition removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub processes: i64,
    pub rejections: i64,
}

/// As the app role: detaches both partitions of `suffix` if every id of
/// theirs has been drawn, none of their processes is open and the last one
/// ended before `cutoff`, checked again under the lock (V48's
/// `processes_detach_partition`); whether it did. The detach is not
/// concurrent: it takes an ACCESS EXCLUSIVE lock on `processes` and
/// `process_errors`, waiting 500 ms at most for each (else a lock timeout,
/// [`crate::StoreError::is_timeout`], and nothing changed), and holds it for the
/// catalog changes. A detach left pending by the owner is finalized.
/// Not in a transaction, so that the lock goes when the function returns.
pub async fn detach_expired(
    c: &impl GenericClient,
    suffix: &str,
    cutoff: DateTime<Utc>,
) -> StoreResult<bool> {
    let n = number(suffix)?;
    Ok(crate::query_one(
        c,
        "select processes_detach_partition($1, $2)",
        &[&n, &cutoff],
    )
    .await?
    .get(0))
}

/// As the app role: attaches the detached partition of `process_errors` of
/// `suffix` again beside its attached partition of `processes` (V48's
/// `process_errors_attach_partition`), as [`reattach`] would.
pub async fn attach_errors(c: &impl GenericClient, suffix: &str) -> StoreResult<()> {
    let n = number(suffix)?;
    crate::execute(c, "select process_errors_attach_partition($1)", &[&n])
        .await
        .map(drop)
}

/// In transaction `tx`: if the detached partition of `processes` of
/// `suffix` still has every process ended before `cutoff` (a batch whose
/// transaction was still running when it was judged would show now),
/// subtracts its processes from `process_counts` — dropping a table fires
/// no delete trigger — and drops it and its `process_errors` partition
/// (V48's `processes_drop_partition`, for the owner and the app role
/// alike); a detached partition of `process_errors` whose processes are
/// gone is dropped as it is. `None`, and nothing dropped, if it no longer
/// qualifies.
pub async fn drop_detached(
    tx: &impl GenericClient,
    suffix: &str,
    cutoff: DateTime<Utc>,
) -> StoreResult<Option<Dropped>> {
    let n = number(suffix)?;
    // Counting reads each table once, a scan, however long it takes: no one
    // else uses a detached partition.
    tx.batch_execute("set local statement_timeout = 0").await?;
    let row = crate::query_opt(
        tx,
        "select dropped_processes, dropped_rejections from processes_drop_partition($1, $2)",
        &[&n, &cutoff],
    )
    .await?;
    Ok(row.map(|r| Dropped {
        processes: r.get(0),
        rejections: r.get(1),
    }))
}
