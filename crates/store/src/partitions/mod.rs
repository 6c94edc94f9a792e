//! The partitions of `processes` and `process_errors` (migration V44): one
//! of each per range of process ids, with the same bounds, named after the
//! range's lowest id (`processes_p1000001`, `process_errors_p1000001`; the
//! ids below the bound of an install upgraded from an unpartitioned table
//! are `_p0`, from `minvalue`).
//!
//! The retention sweeper adds ranges ahead of the ids being drawn
//! ([`add`]), and removes a range whose processes all ended before the
//! retention time: it detaches both partitions, then in one transaction
//! checks the detached table again, subtracts its processes from
//! `process_counts` and drops both ([`drop_detached`]); how it detaches
//! depends on who it runs as (see [`expiry`]). Nothing here reads more than
//! an index entry of a partition that is kept.

use chrono::{DateTime, Utc};

use crate::{GenericClient, StoreError, StoreResult};

mod expiry;

pub use expiry::{
    Dropped, attach_errors, detach, detach_expired, drop_detached, finalize, owns_tables, reattach,
};

/// A range of process ids and its two partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The suffix of both tables' names: `p` and the lowest id (`p0` for the
    /// range from `minvalue`).
    pub suffix: String,
    /// The lowest id; `None` for `minvalue`.
    pub lo: Option<i64>,
    /// One past the highest id.
    pub hi: i64,
}

impl Partition {
    /// The partition of `processes`.
    pub fn processes(&self) -> String {
        format!("processes_{}", self.suffix)
    }

    /// The partition of `process_errors`.
    pub fn errors(&self) -> String {
        format!("process_errors_{}", self.suffix)
    }

    fn bounds(&self) -> String {
        let lo = self
            .lo
            .map_or_else(|| "minvalue".to_owned(), |lo| lo.to_string());
        format!("from ({lo}) to ({})", self.hi)
    }
}

/// Whether `suffix` is one this module makes (`p` and digits), so that it
/// can be written into a statement as it is.
fn checked(suffix: &str) -> StoreResult<&str> {
    number(suffix).map(|_| suffix)
}

/// The number in the names of the partitions of `suffix` (`p1000001`:
/// 1000001), which is what the functions of migration V48 take.
fn number(suffix: &str) -> StoreResult<i64> {
    let digits = suffix.strip_prefix('p').unwrap_or_default();
    match digits.parse::<i64>() {
        Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(StoreError::stored(format!("partition suffix '{suffix}'"))),
    }
}

/// The partitions of `processes` attached now, lowest ids first, and the
/// names of those whose `detach … concurrently` was interrupted (they read
/// as gone already; [`finalize`] ends it).
pub async fn list(c: &impl GenericClient) -> StoreResult<(Vec<Partition>, Vec<String>)> {
    let rows = crate::query(
        c,
        "select substr(c.relname, length('processes_') + 1),
                nullif(trim(both '''' from m[1]), 'MINVALUE')::bigint,
                trim(both '''' from m[2])::bigint,
                i.inhdetachpending
           from pg_inherits i
           join pg_class c on c.oid = i.inhrelid,
                regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\((.+)\\) TO \\((.+)\\)') m
          where i.inhparent = 'processes'::regclass
          order by 2 nulls first",
        &[],
    )
    .await?;
    let mut attached = Vec::new();
    let mut pending = Vec::new();
    for r in rows {
        let suffix: String = r.get(0);
        checked(&suffix)?;
        if r.get::<_, bool>(3) {
            pending.push(suffix);
        } else {
            attached.push(Partition {
                suffix,
                lo: r.get(1),
                hi: r.get(2),
            });
        }
    }
    Ok((attached, pending))
}

/// The suffixes of partitions of either table that are detached and not
/// dropped (a sweep stopped between the two): `(processes, process_errors)`.
pub async fn leftovers(c: &impl GenericClient) -> StoreResult<(Vec<String>, Vec<String>)> {
    let rows = crate::query(
        c,
        "select relname like 'processes%', substring(relname from '_(p[0-9]+)$')
           from pg_class
          where relkind = 'r' and not relispartition
            and relname ~ '^(processes|process_errors)_p[0-9]+$'
            and pg_table_is_visible(oid)
          order by 2",
        &[],
    )
    .await?;
    let (mut processes, mut errors) = (Vec::new(), Vec::new());
    for r in rows {
        let suffix: String = r.get(1);
        checked(&suffix)?;
        if r.get::<_, bool>(0) {
            processes.push(suffix);
        } else {
            errors.push(suffix);
        }
    }
    Ok((processes, errors))
}

/// The id the next process will get.
pub async fn next_id(c: &impl GenericClient) -> StoreResult<i64> {
    let seq: String = crate::query_one(c, "select pg_get_serial_sequence('processes', 'id')", &[])
        .await?
        .get(0);
    // The name comes from the catalog, quoted where it needs to be.
    let sql =
        format!("select case when is_called then last_value + 1 else last_value end from {seq}");
    Ok(crate::query_one(c, &sql, &[]).await?.get(0))
}

/// Whether a `pg_dump` is connected to this database (its sessions say so
/// in `application_name`, which every role may read). A table dropped
/// between a dump's reading of the catalog and its locking of the tables
/// fails the dump ("relation … does not exist"), so the sweeper drops no
/// partition while one runs; a dump that is already locking holds the
/// drop off anyway.
pub async fn dump_running(c: &impl GenericClient) -> StoreResult<bool> {
    Ok(crate::query_one(
        c,
        "select exists (select 1 from pg_stat_activity
                         where datname = current_database() and application_name = 'pg_dump'
                           and pid <> pg_backend_pid())",
        &[],
    )
    .await?
    .get(0))
}

/// The lowest id of a partition and when that process was accepted, from
/// the index on id; `None` for an empty partition.
pub async fn first(
    c: &impl GenericClient,
    p: &Partition,
) -> StoreResult<Option<(i64, DateTime<Utc>)>> {
    let sql = format!(
        "select id, created_at from {} order by id limit 1",
        p.processes()
    );
    Ok(crate::query_opt(c, &sql, &[])
        .await?
        .map(|r| (r.get(0), r.get(1))))
}

/// Adds the partitions of both tables for ids `[lo, hi)` (the function of
/// migration V43): a SHARE UPDATE EXCLUSIVE lock on the partitioned tables,
/// which reads and writes do not wait for. The function runs with its
/// owner's rights (V47), so the app role may call it.
pub async fn add(c: &impl GenericClient, lo: i64, hi: i64) -> StoreResult<()> {
    crate::execute(c, "select processes_add_partition($1, $2)", &[&lo, &hi])
        .await
        .map(drop)
}

/// What a partition of `processes` holds, as far as expiry needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    /// A process is still queued or in process.
    pub open: bool,
    /// When the last of its processes ended; `None` if it has none.
    pub last: Option<DateTime<Utc>>,
}

impl Ends {
    /// Whether every process ended before `cutoff` and none is open.
    pub fn before(&self, cutoff: DateTime<Utc>) -> bool {
        !self.open && self.last.is_none_or(|t| t < cutoff)
    }
}

/// Whether the partition `table` (attached or detached) has an open
/// process, and when its last one ended: two index probes (the partial
/// indexes of open processes and of end times), when run in a transaction
/// after [`index_only`].
pub async fn ends(c: &impl GenericClient, table: &str) -> StoreResult<Ends> {
    let sql = format!(
        "select exists (select 1 from {table} where status in ('queued', 'in_process')),
                (select max(completed_at) from {table})"
    );
    let row = crate::query_one(c, &sql, &[]).await?;
    Ok(Ends {
        open: row.get(0),
        last: row.get(1),
    })
}

/// Makes the rest of the transaction read tables through their indexes
/// only, as ingest's sessions do: a partition is never analyzed, and
/// without statistics the planner may guess a scan of it is cheaper.
pub async fn index_only(tx: &impl GenericClient) -> StoreResult<()> {
    tx.batch_execute("set local enable_seqscan = off; set local enable_bitmapscan = off")
        .await?;
    Ok(())
}
