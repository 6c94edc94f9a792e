//! The large-table stage: the whole system on a table ten times the size of
//! the other stages' — a load, random-key updates, the read endpoints on
//! stale statistics and again after `ANALYZE`, the table's bytes per row, and
//! the raw ceiling for the same updates on the same table, so that the
//! end-to-end ratio compares like with like.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use deadpool_postgres::Pool;

use crate::reads::Auth;
use crate::report::{LargeFigures, ReadFigures};
use crate::system::System;
use crate::{Options, data, load, progress, quiesce, raw, reads};

/// The object type (defined like `item`) whose records are this stage's, and
/// the prefix of their `ext_id`s.
pub(crate) const OBJECT_TYPE: &str = "big";

/// The updates' keys are the same in every run.
const SEED: u64 = 0x5eed_0b1e_c750_0c13;

/// Who the stage writes as.
pub(crate) struct Target<'a> {
    pub(crate) key: &'a str,
    pub(crate) org_id: i64,
    pub(crate) type_id: i32,
}

fn secs(from: chrono::DateTime<Utc>, to: chrono::DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(1).max(1) as f64 / 1e6
}

/// Runs the stage against `settings`' database and broker.
pub(crate) async fn run(
    settings: &objectsync_infra::Settings,
    pool: &Pool,
    target: &Target<'_>,
    opts: &Options,
) -> Result<LargeFigures, String> {
    let mut f = LargeFigures {
        records: opts.large_records,
        updates: opts.large_updates,
        ..LargeFigures::default()
    };
    let mut system = System::start(settings, crate::ADMIN_TOKEN, opts.workers).await?;
    let client = reqwest::Client::new();
    let url = format!("{}/v3/objects/{OBJECT_TYPE}/batch/upsert", system.address);
    let post = |bodies: Vec<Vec<u8>>| {
        load::post_all(&client, &url, target.key, Arc::new(bodies), opts.producers)
    };

    // Load in tenths, each generated before its clock starts and drained
    // before the next: progress to watch, and a broker backlog no deeper than
    // the other stages', instead of gigabytes of bodies queued at once.
    let n = opts.large_records;
    let step = n.div_ceil(10).div_ceil(data::BATCH) * data::BATCH;
    let mut loading = 0.0;
    for from in (0..n).step_by(step) {
        let size = step.min(n - from);
        let bodies = data::bodies(OBJECT_TYPE, from, size, 1);
        let t0 = Utc::now();
        let posted = post(bodies).await?;
        let done = load::wait_completed(pool, &posted.process_ids, "large table, load").await?;
        loading += secs(t0, done);
        let created = load::sum_counter(pool, &posted.process_ids, "records_created").await?;
        if created != size as i64 {
            return Err(format!(
                "large table, load: {created} records created, {size} sent"
            ));
        }
        let loaded = from + size;
        progress(&format!(
            "large table, load: {loaded}/{n} records ({:.0} %), {:.0} records/s so far",
            loaded as f64 * 100.0 / n as f64,
            loaded as f64 / loading
        ));
    }
    f.load_rps = n as f64 / loading;

    // Random-key updates, timed like stage 3's: first post to last completed.
    let batches = data::random_batches(n, opts.large_updates, SEED);
    let bodies = batches
        .iter()
        .map(|b| data::body(OBJECT_TYPE, b.iter().copied(), 2))
        .collect();
    quiesce(pool).await;
    let updates_before = row_updates(pool).await?;
    let waits_before = system.order_waits().await?;
    progress(&format!(
        "large table, end to end: {} random-key updates with {} producers",
        opts.large_updates, opts.producers
    ));
    let (ingest_pid, worker_pids) = system.pids();
    let cpu0 = crate::parts::snapshot();
    let t0 = Utc::now();
    let posted = post(bodies).await?;
    let done = load::wait_completed(pool, &posted.process_ids, "large table, updates").await?;
    let n_posted = posted.process_ids.len();
    f.update_cpu = crate::parts::spent(pool, cpu0, ingest_pid, &worker_pids, n_posted).await;
    let updated = load::sum_counter(pool, &posted.process_ids, "records_updated").await?;
    if updated != opts.large_updates as i64 {
        return Err(format!(
            "large table, updates: {updated} records updated, {} sent",
            opts.large_updates
        ));
    }
    f.update_rps = opts.large_updates as f64 / secs(t0, done);

    progress(&format!(
        "large table, end to end, updates: {:.0} records/s",
        f.update_rps
    ));
    crate::parts::report("large table, end to end updates", f.update_cpu.as_ref());
    let waits = system.order_waits().await?;
    f.order_wait_batches = waits.batches - waits_before.batches;
    f.order_wait_secs = waits.seconds - waits_before.seconds;
    progress(&format!(
        "large table, updates: {} of {} batches waited for an older one on the same records, {:.1} s in all",
        f.order_wait_batches,
        opts.large_updates.div_ceil(data::BATCH),
        f.order_wait_secs
    ));

    // A process with a page of errors to read.
    let rejected = post(vec![data::rejected_body("big-rejected")]).await?;
    load::wait_completed(pool, &rejected.process_ids, "rejected batch").await?;

    // Processes by the million: as many completed ones as a third of the
    // records, straight into the table, as if that many small batches had
    // been applied in the last hour (posting them would take the stage hours).
    let history = n / 3;
    add_processes(pool, target.org_id, history).await?;
    progress(&format!("processes: {history} completed ones added"));

    let mut endpoints = reads::endpoints(
        OBJECT_TYPE,
        n,
        count_processes(pool, target.org_id).await?,
        rejected.process_ids[0],
    );
    endpoints.insert(
        3,
        reads::deep_cursor(&client, &system.address, target.key, OBJECT_TYPE, n).await?,
    );
    let pages = reads::console_pages(target.org_id, rejected.process_ids[0]);
    let cookie = reads::console_login(&system.address, crate::ADMIN_TOKEN).await?;
    let endpoints: Vec<_> = endpoints
        .into_iter()
        .map(|e| (e, Auth::Key(target.key)))
        .chain(pages.into_iter().map(|e| (e, Auth::Cookie(&cookie))))
        .collect();
    let mut stale = Vec::new();
    for (e, auth) in &endpoints {
        let l = reads::time(&client, &system.address, *auth, e).await?;
        progress(&format!(
            "GET {} (stale statistics): p50 {:.1} ms, p99 {:.1} ms, first {:.1} ms",
            e.path, l.p50_ms, l.p99_ms, l.first_ms
        ));
        stale.push(l);
    }
    (f.rows, f.bytes_per_row, f.heap_bytes_per_row) = sizes(pool).await?;
    progress(&format!(
        "records: {} rows, {:.0} bytes per row with indexes and TOAST, {:.0} in the heap",
        f.rows, f.bytes_per_row, f.heap_bytes_per_row
    ));

    let analyzing = Instant::now();
    pool.get()
        .await
        .map_err(|e| e.to_string())?
        .batch_execute("analyze")
        .await
        .map_err(|e| e.to_string())?;
    f.analyze_secs = analyzing.elapsed().as_secs_f64();
    progress(&format!("ANALYZE: {:.1} s", f.analyze_secs));
    for ((e, auth), stale) in endpoints.into_iter().zip(stale) {
        let l = reads::time(&client, &system.address, auth, &e).await?;
        progress(&format!(
            "GET {} (after ANALYZE): p50 {:.1} ms, p99 {:.1} ms",
            e.path, l.p50_ms, l.p99_ms
        ));
        f.reads.push(ReadFigures {
            name: e.name,
            path: e.path,
            stale,
            analyzed: l,
        });
    }
    system.stop().await;
    // The workers' sessions have ended, so their statistics are flushed.
    let (upd, hot) = row_updates(pool).await?;
    let upd = upd - updates_before.0;
    f.hot_update_share = (hot - updates_before.1) as f64 / upd.max(1) as f64;
    progress(&format!(
        "large table: {upd} row updates, {:.0} % of them HOT",
        f.hot_update_share * 100.0
    ));

    // The raw ceiling: the same keys and values, with the system stopped, as
    // the raw stage runs. It comes last so that the reads and sizes above
    // show the table as the system left it.
    let columns: Vec<raw::Batch> = batches
        .iter()
        .map(|b| raw::columns(OBJECT_TYPE, b, 2))
        .collect();
    quiesce(pool).await;
    f.raw_update_rps = raw::upsert_records(
        pool,
        target.org_id,
        target.type_id,
        Arc::new(columns),
        opts.connections,
    )
    .await?;
    progress(&format!(
        "large table, raw ceiling, updates: {:.0} records/s",
        f.raw_update_rps
    ));
    Ok(f)
}

/// Row updates of `records` so far, and how many of them were HOT, as the
/// cumulative statistics count them (flushed when a session ends or idles).
async fn row_updates(pool: &Pool) -> Result<(i64, i64), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "select coalesce(sum(n_tup_upd), 0)::int8, coalesce(sum(n_tup_hot_upd), 0)::int8
               from pg_stat_user_tables where relname = 'records'",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok((row.get(0), row.get(1)))
}

/// Adds `n` completed processes of one record each to `org_id`'s history,
/// ended evenly over the last hour (newer ids later), each 5 to 204 ms after
/// it was accepted: an hour at a sustained rate of small batches, which is
/// what the console's overview sums.
async fn add_processes(pool: &Pool, org_id: i64, n: usize) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .execute(
            "insert into processes (org_id, name, object_type, records_total, records_processed,
                                    records_updated, status, deliveries, created_at, started_at,
                                    completed_at)
             select $1, 'OBJECT_RECORDS_UPSERT', 'big', 1, 1, 1, 'completed', 1,
                    t - (5 + g % 200) * interval '1 ms', t, t
               from (select g, now() - ($2 - g)::float8 / $2 * interval '1 hour' as t
                       from generate_series(1, $2::int8) as g) as s",
            &[&org_id, &(n as i64)],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn count_processes(pool: &Pool, org_id: i64) -> Result<usize, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "select count(*) from processes where org_id = $1",
            &[&org_id],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get::<_, i64>(0) as usize)
}

/// Live rows of `records`, and its size per row with indexes and TOAST, and
/// of the heap alone. Dead row versions left by the updates (autovacuum may
/// be off, and is slow to come round anyway) count in the size, not the rows.
async fn sizes(pool: &Pool) -> Result<(i64, f64, f64), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "select count(*), pg_total_relation_size('records'), pg_relation_size('records')
               from records",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    let (rows, total, heap): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let per_row = |bytes: i64| bytes as f64 / rows.max(1) as f64;
    Ok((rows, per_row(total), per_row(heap)))
}
