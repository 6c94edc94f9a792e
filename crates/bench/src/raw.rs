//! The database alone: the raw ceiling (set-based upserts, as a hand-tuned
//! loader would write them) and the naive baseline (one statement per
//! record), both over the same connections count, into tables shaped exactly
//! like `records`; and, for the large-table stage, the same set-based
//! statement into `records` itself, whose size is the point there.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use serde_json::Value;

use crate::data::{BATCH, attributes, ext_id};

const SET_BASED: &str = "
    insert into bench_raw (org_id, type_id, ext_id, attributes)
    select 1, 1, u.e, u.a from unnest($1::text[], $2::jsonb[]) as u(e, a)
        on conflict (org_id, type_id, ext_id) where ext_id is not null
        do update set attributes = bench_raw.attributes || excluded.attributes, updated_at = now()";

const PER_RECORD: &str = "
    insert into bench_naive (org_id, type_id, ext_id, attributes) values (1, 1, $1, $2)
        on conflict (org_id, type_id, ext_id) where ext_id is not null
        do update set attributes = bench_naive.attributes || excluded.attributes, updated_at = now()";

/// The raw ceiling of the large-table stage: the same statement as
/// [`SET_BASED`], into `records` itself, on the rows of one object type.
const SET_BASED_RECORDS: &str = "
    insert into records (org_id, type_id, ext_id, attributes)
    select $3, $4, u.e, u.a from unnest($1::text[], $2::jsonb[]) as u(e, a)
        on conflict (org_id, type_id, ext_id) where ext_id is not null
        do update set attributes = records.attributes || excluded.attributes, updated_at = now()";

/// One batch's columns: `ext_id`s and attributes.
pub(crate) type Batch = (Vec<String>, Vec<Value>);

/// Creates the two tables, each a copy of `records` with its indexes.
pub(crate) async fn prepare(pool: &Pool) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .batch_execute(
            "create table bench_raw (like records including all);
             create table bench_naive (like records including all);",
        )
        .await
        .map_err(|e| e.to_string())
}

/// The columns of records `indices`.
pub(crate) fn columns(run: &str, indices: &[usize], version: u32) -> Batch {
    indices
        .iter()
        .map(|&i| (ext_id(run, i), attributes(i, version)))
        .unzip()
}

/// How a loader writes a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loader {
    /// One set-based upsert statement per batch (the raw ceiling).
    SetBased,
    /// A statement per record, a transaction per batch (the naive baseline).
    PerRecord,
    /// A statement per record, each its own transaction.
    PerRecordAutocommit,
}

/// Upserts `records` records with `connections` connections working side by
/// side; returns records per second.
pub(crate) async fn run(
    pool: &Pool,
    run: &str,
    records: usize,
    version: u32,
    connections: usize,
    loader: Loader,
) -> Result<f64, String> {
    // Generate before timing: the stage measures the database.
    let batches: Vec<Batch> = (0..records)
        .step_by(BATCH)
        .map(|s| {
            let indices: Vec<usize> = (s..(s + BATCH).min(records)).collect();
            columns(run, &indices, version)
        })
        .collect();
    drive(pool, Arc::new(batches), connections, loader, None).await
}

/// The set-based loader's upserts of `batches` straight into `records`, on
/// the rows of organization `org_id` and object type `type_id`, with
/// `connections` connections; returns records per second.
pub(crate) async fn upsert_records(
    pool: &Pool,
    org_id: i64,
    type_id: i32,
    batches: Arc<Vec<Batch>>,
    connections: usize,
) -> Result<f64, String> {
    drive(
        pool,
        batches,
        connections,
        Loader::SetBased,
        Some((org_id, type_id)),
    )
    .await
}

/// Writes `batches` with `connections` connections taking the next batch in
/// turn. `into_records` names the organization and type to write into `records`
/// itself (set-based only); without it the loader writes into its own table.
async fn drive(
    pool: &Pool,
    batches: Arc<Vec<Batch>>,
    connections: usize,
    loader: Loader,
    into_records: Option<(i64, i32)>,
) -> Result<f64, String> {
    let total: usize = batches.iter().map(|(exts, _)| exts.len()).sum();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (pool, batches, next) = (pool.clone(), batches.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = pool.get().await.map_err(|e| e.to_string())?;
            let sql = match (loader, into_records) {
                (Loader::SetBased, Some(_)) => SET_BASED_RECORDS,
                (Loader::SetBased, None) => SET_BASED,
                _ => PER_RECORD,
            };
            let stmt = client.prepare(sql).await.map_err(|e| e.to_string())?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((exts, attrs)) = batches.get(i) else {
                    return Ok::<(), String>(());
                };
                if let (Loader::SetBased, Some((org_id, type_id))) = (loader, into_records) {
                    client
                        .execute(&stmt, &[exts, attrs, &org_id, &type_id])
                        .await
                        .map_err(|e| e.to_string())?;
                } else if loader == Loader::SetBased {
                    client
                        .execute(&stmt, &[exts, attrs])
                        .await
                        .map_err(|e| e.to_string())?;
                } else if loader == Loader::PerRecordAutocommit {
                    for (e, a) in exts.iter().zip(attrs) {
                        client
                            .execute(&stmt, &[e, a])
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                } else {
                    // The naive loader: a transaction per batch, a statement per record.
                    let tx = client.transaction().await.map_err(|e| e.to_string())?;
                    for (e, a) in exts.iter().zip(attrs) {
                        tx.execute(&stmt, &[e, a])
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    tx.commit().await.map_err(|e| e.to_string())?;
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(total as f64
        / started
            .elapsed()
            .max(Duration::from_micros(1))
            .as_secs_f64())
}
