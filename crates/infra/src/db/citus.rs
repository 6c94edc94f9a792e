//! Citus: the same schema, spread over PostgreSQL servers by organization.
//!
//! After the migrations, [`migrate`](super::migrate) asks whether the
//! database is a Citus coordinator (the `citus` extension is installed and
//! worker nodes are registered). If so, and migrations were applied or the
//! schema was never placed, every table of schema `public` not yet in
//! Citus's metadata is placed (so a table made by hand in `public` is
//! placed by the next migration's run too: keep such tables in a schema of
//! their own):
//! - a table with an `org_id not null` column whose unique keys all
//!   include it is distributed by `org_id`, colocated with `processes`:
//!   one organization's rows of every table live on one worker, and a
//!   statement that names the organization is routed to it whole;
//! - every other table (`organizations`, `workers`, `console_sessions`,
//!   `dead_letters`, the webhook tables and the event outbox, keyed by ids
//!   of their own…) and `api_keys`, which requests read by key hash
//!   before they know the organization, becomes a reference table: a copy
//!   on every node, read locally, written on all of them;
//! - `refinery_schema_history` stays on the coordinator.
//!
//! Citus does not run triggers on distributed tables, so the triggers that
//! keep `record_counts` and `process_counts` are dropped; the store writes
//! those counts in the same transactions instead (its `Engine`). The
//! trigger that writes completion events (`processes_ended`) is dropped
//! too: on Citus no completion events or webhook deliveries are written
//! (the workers say so when they start; see docs/SCALING.md). Foreign
//! keys are dropped while the tables are placed and added back after, as
//! Citus turns a local table that references a new reference table into a
//! "citus local" table, which then cannot be distributed with an identity
//! column. The dashboard views are put behind functions that read as
//! their owner (see [`dashboard`]). Plain PostgreSQL is left exactly as
//! the migrations made it.

mod dashboard;

pub use dashboard::wrap as wrap_dashboard_views;

use tokio_postgres::Client;

use super::DbError;

/// Tables that have `org_id` but are read before the organization is known.
const REFERENCE_ALWAYS: &[&str] = &["api_keys"];

/// Tables Citus leaves alone: the migrations' own bookkeeping.
const LOCAL: &[&str] = &["refinery_schema_history"];

/// The triggers Citus cannot run: those that count records and processes
/// (migrations V25, V27), and the one that writes completion events and
/// webhook deliveries (V38), whose tables are reference tables here.
const DROPPED_TRIGGERS: &[(&str, &str)] = &[
    ("records", "records_count_inserted"),
    ("records", "records_count_deleted"),
    ("processes", "processes_count_inserted"),
    ("processes", "processes_count_deleted"),
    ("processes", "processes_ended"),
];

/// The retention functions of migration V48, which read a partition and
/// then detach or drop it in one transaction.
const SEQUENTIAL_FUNCTIONS: &[&str] = &[
    "processes_detach_partition(bigint, timestamptz)",
    "processes_drop_partition(bigint, timestamptz)",
    "process_errors_attach_partition(bigint)",
];

/// The table every distributed table is colocated with.
const ANCHOR: &str = "processes";

/// What one run of [`distribute`] placed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Placed {
    pub reference: Vec<String>,
    pub distributed: Vec<String>,
}

/// Whether this database is a Citus coordinator with workers: the
/// extension is installed and at least one worker node is registered.
pub async fn is_coordinator(client: &Client) -> Result<bool, DbError> {
    let installed: bool = client
        .query_one(
            "select exists (select from pg_extension where extname = 'citus')",
            &[],
        )
        .await?
        .get(0);
    if !installed {
        return Ok(false);
    }
    let workers: i64 = client
        .query_one(
            "select count(*) from pg_dist_node where groupid <> 0 and noderole = 'primary'",
            &[],
        )
        .await?
        .get(0);
    Ok(workers > 0)
}

/// The tables of schema `public` Citus has not placed yet (partitions go
/// with their parent), each with whether it can be distributed by
/// `org_id`: it has the column, `not null`, and every unique index
/// includes it (Citus enforces uniqueness within a shard only).
async fn unplaced(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Vec<(String, bool)>, DbError> {
    let rows = client
        .query(
            "select c.relname::text,
                    exists (select from pg_attribute a
                             where a.attrelid = c.oid and a.attname = 'org_id'
                               and a.attnotnull and not a.attisdropped)
                    and not exists (
                        select from pg_index i
                         where i.indrelid = c.oid and i.indisunique
                           and not exists (
                               select from pg_attribute a
                                where a.attrelid = c.oid and a.attname = 'org_id'
                                  and a.attnum = any(i.indkey)))
               from pg_class c
              where c.relnamespace = 'public'::regnamespace
                and c.relkind in ('r', 'p') and not c.relispartition
                and not exists (select from pg_dist_partition d where d.logicalrelid = c.oid)
              order by c.relname",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, bool>(1)))
        .filter(|(name, _)| !LOCAL.contains(&name.as_str()))
        .collect())
}

/// Whether the schema was never placed on this coordinator (`processes`
/// is not distributed yet): a worker waits for that as it waits for the
/// migrations, and `migrate` places it even with no migration to apply
/// (workers registered after the schema was made).
pub async fn pending(client: &Client) -> Result<bool, DbError> {
    if !is_coordinator(client).await? {
        return Ok(false);
    }
    let placed: bool = client
        .query_one(
            "select exists (select from pg_dist_partition
                             where logicalrelid = 'processes'::regclass)",
            &[],
        )
        .await?
        .get(0);
    Ok(!placed)
}

/// On a Citus coordinator, distributes the tables the migrations made, when
/// `applied` migrations were just applied or the schema was never placed
/// (nothing on plain PostgreSQL).
pub(super) async fn place(
    client: &mut tokio_postgres::Client,
    applied: usize,
) -> Result<(), DbError> {
    if !is_coordinator(client).await? {
        return Ok(());
    }
    if applied == 0 && !pending(client).await? {
        return Ok(());
    }
    let placed = distribute(client).await?;
    if !placed.reference.is_empty() || !placed.distributed.is_empty() {
        tracing::info!(
            reference = ?placed.reference,
            distributed = ?placed.distributed,
            "citus: tables placed"
        );
    }
    // The functions that remove an expired partition read it over every
    // shard, then change the tables: in one transaction Citus allows that
    // only over one connection per worker.
    for function in SEQUENTIAL_FUNCTIONS {
        client
            .batch_execute(&format!(
                "alter function {function} set citus.multi_shard_modify_mode = 'sequential'"
            ))
            .await?;
    }
    let wrapped = wrap_dashboard_views(client).await?;
    if !wrapped.is_empty() {
        tracing::info!(views = ?wrapped, "citus: dashboard views read through their owner's functions");
    }
    Ok(())
}

/// Places every table not placed yet (see the module's documentation), in
/// one transaction; the caller holds the migration lock.
pub async fn distribute(client: &mut Client) -> Result<Placed, DbError> {
    let tx = client.transaction().await?;
    // Placing tables and adding foreign keys in one transaction needs one
    // connection per worker, not a parallel one per shard.
    tx.batch_execute("set local citus.multi_shard_modify_mode to 'sequential'")
        .await?;
    let tables = unplaced(&tx).await?;
    if tables.is_empty() {
        return Ok(Placed::default());
    }
    for (table, trigger) in DROPPED_TRIGGERS {
        tx.batch_execute(&format!("drop trigger if exists {trigger} on {table}"))
            .await?;
    }
    let names: Vec<&str> = tables.iter().map(|(n, _)| n.as_str()).collect();
    let others = tx
        .query(
            "select tgrelid::regclass::text, tgname::text from pg_trigger
              where not tgisinternal and tgrelid::regclass::text = any($1)",
            &[&names],
        )
        .await?;
    if let Some(t) = others.first() {
        return Err(DbError::Citus(format!(
            "trigger {} on {} would not run on a distributed table",
            t.get::<_, String>(1),
            t.get::<_, String>(0)
        )));
    }
    let keys = tx
        .query(
            "select conrelid::regclass::text, conname::text, pg_get_constraintdef(oid)
               from pg_constraint
              where contype = 'f' and conrelid::regclass::text = any($1)",
            &[&names],
        )
        .await?;
    for k in &keys {
        tx.batch_execute(&format!(
            "alter table {} drop constraint {}",
            k.get::<_, String>(0),
            k.get::<_, String>(1)
        ))
        .await?;
    }
    let mut placed = Placed::default();
    let (mut distributed, reference): (Vec<_>, Vec<_>) = tables
        .into_iter()
        .partition(|(name, org)| *org && !REFERENCE_ALWAYS.contains(&name.as_str()));
    for (name, _) in reference {
        tx.execute(
            "select create_reference_table($1::text::regclass)",
            &[&name],
        )
        .await?;
        placed.reference.push(name);
    }
    // The anchor first, so that the others can be colocated with it.
    distributed.sort_by_key(|(name, _)| name != ANCHOR);
    for (name, _) in distributed {
        let colocate = if name == ANCHOR { "default" } else { ANCHOR };
        tx.execute(
            "select create_distributed_table($1::text::regclass, 'org_id', colocate_with => $2::text)",
            &[&name, &colocate],
        )
        .await?;
        placed.distributed.push(name);
    }
    for k in &keys {
        tx.batch_execute(&format!(
            "alter table {} add constraint {} {}",
            k.get::<_, String>(0),
            k.get::<_, String>(1),
            k.get::<_, String>(2)
        ))
        .await?;
    }
    tx.commit().await?;
    Ok(placed)
}
