//! `objectsync-bench`: measures, in one run on one machine, the raw
//! database ceiling, a naive baseline, the whole system end to end, ingest
//! alone, a lone batch on an idle system, the memory of each process, and
//! the cost and latency of completion events and webhooks (stages 1–7, on
//! a table of a few hundred thousand records); then, on a
//! table of millions (its own object type, `big`), the load, random-key
//! updates against the raw ceiling for the same updates on that same table,
//! the read endpoints on stale statistics and after `ANALYZE`, and the bytes
//! each row takes — figures that a small table flatters. Either part can run
//! alone (`Stages`). Everything runs against the local PostgreSQL and
//! RabbitMQ in a database and queues of its own, removed afterwards.

mod cpu;
mod data;
mod events;
mod fairness;
mod large;
mod load;
mod parts;
mod raw;
mod reads;
mod report;
pub mod retention;
mod system;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lapin::options::QueuePurgeOptions;
use objectsync_ingest::admin::service;
use objectsync_model::DefinitionInput;
use objectsync_testkit::Sandbox;

pub use report::{CpuSplit, EventFigures, Figures, LargeFigures, Latency, ReadFigures};

/// Which stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stages {
    All,
    /// Stages 1–6 only.
    SkipLarge,
    /// The large-table stage only: it is the slow one to iterate on.
    OnlyLarge,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub stages: Stages,
    pub records: usize,
    pub workers: usize,
    pub producers: usize,
    /// Connections of the raw and naive stages.
    pub connections: usize,
    /// Seconds of each ingest-alone run.
    pub ingest_secs: u64,
    pub lone_batches: usize,
    /// Batches of the contended-updates run (all on the same records).
    pub contended_batches: usize,
    /// Batches one organization queues in the fairness stage.
    pub fairness_backlog: usize,
    /// Lone batches another organization posts meanwhile.
    pub fairness_tries: usize,
    /// Records loaded into the large table.
    pub large_records: usize,
    /// Random-key updates on the large table.
    pub large_updates: usize,
}

const ADMIN_TOKEN: &str = "bench-admin-token-of-32-characters";

fn progress(msg: &str) {
    eprintln!("[bench] {msg}");
}

/// Drops the batches the ingest-alone runs queued (no worker is running), and
/// fails their processes, as an operator would: a process whose batch is
/// gone would otherwise stay open, and later batches of the organization
/// would check their order against it.
async fn purge(
    settings: &objectsync_infra::Settings,
    pool: &deadpool_postgres::Pool,
) -> Result<(), String> {
    let conn = objectsync_infra::amqp::connect(&settings.amqp, "objectsync-bench")
        .await
        .map_err(|e| e.to_string())?;
    let channel = conn.create_channel().await.map_err(|e| e.to_string())?;
    for queue in objectsync_infra::Topology::new(&settings.amqp).batch_queues() {
        channel
            .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
            .await
            .map_err(|e| e.to_string())?;
    }
    let _ = conn.close(200, "OK".into()).await;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .execute(
            "update processes
                set status = 'failed', error = 'purged by the bench', completed_at = now(),
                    footprint_keys = null
              where status in ('queued', 'in_process')",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Flushes PostgreSQL's dirty buffers now (a checkpoint), so that the next
/// stage is not measured through one. Needs superuser; skipped otherwise.
async fn quiesce(pool: &deadpool_postgres::Pool) {
    if let Ok(client) = pool.get().await
        && let Err(e) = client.batch_execute("checkpoint").await
    {
        progress(&format!("(could not checkpoint before the stage: {e})"));
    }
}

/// Runs the chosen stages and returns the figures.
pub async fn run(opts: &Options) -> Result<Figures, String> {
    let mut sandbox = Sandbox::create("bench").await;
    // The bench measures throughput, not the limits that protect tenants
    // from each other.
    sandbox.settings.limits = objectsync_infra::settings::LimitSettings::UNLIMITED;
    let mut f = Figures {
        small_stages: opts.stages != Stages::OnlyLarge,
        records: opts.records,
        workers: opts.workers,
        producers: opts.producers,
        connections: opts.connections,
        ..Figures::default()
    };

    let (org, big_type_id) = {
        let mut client = sandbox.pool.get().await.map_err(|e| e.to_string())?;
        let org = service::create_org(&mut client, "bench", true)
            .await
            .map_err(|e| e.to_string())?;
        let mut type_id = objectsync_model::TypeId(0);
        for name in ["item", large::OBJECT_TYPE] {
            let def = DefinitionInput::from_json(&data::definition()).map_err(|e| e.to_string())?;
            type_id = service::put_object_type(&mut client, org.id, name, def)
                .await
                .map_err(|e| e.to_string())?
                .id;
        }
        (org, type_id)
    };

    if f.small_stages {
        small_stages(&sandbox, &org.api_key, org.id.get(), opts, &mut f).await?;
    }
    if opts.stages != Stages::SkipLarge {
        let target = large::Target {
            key: &org.api_key,
            org_id: org.id.get(),
            type_id: big_type_id.get(),
        };
        f.large = Some(large::run(&sandbox.settings, &sandbox.pool, &target, opts).await?);
    }
    progress("cleaning up");
    f.finish();
    Ok(f)
}

/// Stages 1–6, into `f`.
async fn small_stages(
    sandbox: &Sandbox,
    key: &str,
    org_id: i64,
    opts: &Options,
    f: &mut Figures,
) -> Result<(), String> {
    let pool = &sandbox.pool;
    // 1–2. The database alone.
    raw::prepare(pool).await?;
    let n = opts.records;
    let c = opts.connections;
    use raw::Loader::{PerRecord, PerRecordAutocommit, SetBased};
    // The same with a transaction per statement, on a sample: it is slow.
    let sample = n.min(20_000);
    let runs: [(&str, usize, u32, raw::Loader, &str); 5] = [
        ("raw", n, 1, SetBased, "raw ceiling, inserts"),
        ("raw", n, 2, SetBased, "raw ceiling, updates"),
        ("naive", n, 1, PerRecord, "naive baseline, inserts"),
        ("naive", n, 2, PerRecord, "naive baseline, updates"),
        (
            "auto",
            sample,
            1,
            PerRecordAutocommit,
            "naive baseline with autocommit, inserts",
        ),
    ];
    let mut rates = [0.0; 5];
    let mut cpus = [None; 5];
    for ((rate, cpu), (table, count, version, loader, label)) in
        rates.iter_mut().zip(cpus.iter_mut()).zip(runs)
    {
        let cpu0 = parts::snapshot();
        *rate = raw::run(pool, table, count, version, c, loader).await?;
        progress(&format!("{label}: {rate:.0} records/s ({count} records)"));
        *cpu = parts::spent(pool, cpu0, None, &[], count.div_ceil(data::BATCH)).await;
        parts::report(label, cpu.as_ref());
    }
    [f.raw_insert_cpu, f.raw_update_cpu] = [cpus[0], cpus[1]];
    [
        f.raw_insert_rps,
        f.raw_update_rps,
        f.naive_insert_rps,
        f.naive_update_rps,
        f.naive_autocommit_insert_rps,
    ] = rates;

    // 3. The whole system, with RSS sampled throughout.
    let mut system = system::System::start(&sandbox.settings, ADMIN_TOKEN, opts.workers).await?;
    let peak = Arc::new(system::PeakRss::default());
    let sampler = tokio::spawn(system::sample_rss(system.pids(), peak.clone()));
    let client = reqwest::Client::new();
    let url = format!("{}/v3/objects/item/batch/upsert", system.address);
    for (version, label) in [(1, "inserts"), (2, "updates")] {
        let bodies = Arc::new(data::bodies("e2e", 0, n, version));
        progress(&format!(
            "end to end, {label}: posting {} batches with {} producers",
            bodies.len(),
            opts.producers
        ));
        let (ingest_pid, worker_pids) = system.pids();
        let cpu0 = parts::snapshot();
        let t0 = Utc::now();
        let posted = load::post_all(&client, &url, key, bodies.clone(), opts.producers).await?;
        let done = load::wait_completed(pool, &posted.process_ids, label).await?;
        let cpu = parts::spent(pool, cpu0, ingest_pid, &worker_pids, bodies.len()).await;
        let secs = (done - t0).num_microseconds().unwrap_or(1).max(1) as f64 / 1e6;
        let column = if version == 1 {
            "records_created"
        } else {
            "records_updated"
        };
        let counted = load::sum_counter(pool, &posted.process_ids, column).await?;
        if counted != n as i64 {
            return Err(format!(
                "end to end {label}: {counted} records counted, {n} sent"
            ));
        }
        let rps = n as f64 / secs;
        progress(&format!(
            "end to end, {label}: {rps:.0} records/s ({secs:.2} s; all posted after {:.2} s)",
            posted.elapsed.as_secs_f64()
        ));
        parts::report(&format!("end to end, {label}"), cpu.as_ref());
        if version == 1 {
            f.e2e_insert_rps = rps;
            f.e2e_insert_cpu = cpu;
        } else {
            f.e2e_update_rps = rps;
            f.e2e_update_cpu = cpu;
        }
    }
    // The same 1,000 records updated by many batches at once: every batch
    // conflicts with every other, so they are applied one at a time in
    // acceptance order (the worst case of the ordering rule).
    let contended: Vec<Vec<u8>> = (0..opts.contended_batches)
        .map(|k| data::body("e2e", 0..data::BATCH, 3 + k as u32))
        .collect();
    let t0 = Utc::now();
    let posted = load::post_all(&client, &url, key, Arc::new(contended), opts.producers).await?;
    let done = load::wait_completed(pool, &posted.process_ids, "contended updates").await?;
    let secs = (done - t0).num_microseconds().unwrap_or(1).max(1) as f64 / 1e6;
    f.contended_update_rps = (opts.contended_batches * data::BATCH) as f64 / secs;
    progress(&format!(
        "end to end, {} batches updating the same {} records: {:.0} records/s",
        opts.contended_batches,
        data::BATCH,
        f.contended_update_rps
    ));

    sampler.abort();
    f.ingest_rss_mb = peak.ingest.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0;
    f.worker_rss_mb = peak.worker.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0;

    // 4. Ingest alone: flat out, then at half that rate. Each run starts from
    //    a quiet system: the writes of the stages before would otherwise
    //    trigger a checkpoint in the middle of it, and its fsyncs stall the
    //    commits every 202 waits for.
    system.stop_workers().await;
    quiesce(pool).await;
    let bodies = Arc::new(data::bodies("alone", 0, 100 * data::BATCH, 1));
    let window = Duration::from_secs(opts.ingest_secs);
    let flat = load::post_for(&client, &url, key, bodies.clone(), opts.producers, window).await?;
    f.ingest_batches_per_s = flat.process_ids.len() as f64 / flat.elapsed.as_secs_f64();
    f.ingest_p50_ms = load::percentile(&flat.latencies_ms, 0.5);
    f.ingest_p99_ms = load::percentile(&flat.latencies_ms, 0.99);
    f.ingest_max_ms = load::percentile(&flat.latencies_ms, 1.0);
    progress(&format!(
        "ingest alone: {:.0} batches/s, 202 in p50 {:.1} ms / p99 {:.1} ms / max {:.1} ms",
        f.ingest_batches_per_s, f.ingest_p50_ms, f.ingest_p99_ms, f.ingest_max_ms
    ));
    purge(&sandbox.settings, pool).await?;
    // Let the broker settle after dropping a backlog of 300 MB or more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    quiesce(pool).await;
    let half = load::post_at_rate(
        &client,
        &url,
        key,
        bodies,
        f.ingest_batches_per_s / 2.0,
        window,
    )
    .await?;
    f.ingest_half_rate_p99_ms = load::percentile(&half, 0.99);
    progress(&format!(
        "ingest alone at {:.0} batches/s: 202 in p99 {:.1} ms",
        f.ingest_batches_per_s / 2.0,
        f.ingest_half_rate_p99_ms
    ));
    purge(&sandbox.settings, pool).await?;

    // 5. A lone batch on an idle system.
    system.start_workers(opts.workers)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut lone = Vec::new();
    let mut accepted_at = Vec::new();
    for i in 0..opts.lone_batches {
        let body = data::bodies("lone", i * data::BATCH, data::BATCH, 1).remove(0);
        let posted = load::post_all(&client, &url, key, Arc::new(vec![body]), 1).await?;
        let accepted = Utc::now();
        let done = load::wait_completed(pool, &posted.process_ids, "lone batch").await?;
        lone.push(load::ms_between(accepted, done));
        accepted_at.extend(posted.process_ids.iter().map(|&id| (id, accepted)));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    f.lone_batch_ms = load::percentile(&lone, 0.5);
    f.lone_batch_max_ms = load::percentile(&lone, 1.0);
    let (to_start, to_end) = lone_split(pool, &accepted_at).await?;
    f.lone_to_started_ms = load::percentile(&to_start, 0.5);
    f.lone_started_to_completed_ms = load::percentile(&to_end, 0.5);
    progress(&format!(
        "lone batch: 202 → completed in {:.1} ms (median of {}), max {:.1} ms; \
         202 → started {:.1} ms, started → completed {:.1} ms (medians)",
        f.lone_batch_ms,
        lone.len(),
        f.lone_batch_max_ms,
        f.lone_to_started_ms,
        f.lone_started_to_completed_ms
    ));

    // Stage 7, events and webhooks: inserts with and without a webhook,
    // and how soon events and deliveries arrive. Run here, while the
    // workers run and before the fairness stage leaves a backlog behind.
    f.events = Some(
        events::run(&events::Setup {
            settings: &sandbox.settings,
            pool,
            address: &system.address,
            admin_token: ADMIN_TOKEN,
            key,
            org_id,
            records: n,
            producers: opts.producers,
        })
        .await?,
    );

    // 6. Fairness: another organization's lone batch while one holds a
    //    deep backlog.
    system.stop_workers().await;
    let fair = fairness::run(
        &mut system,
        fairness::Setup {
            pool,
            topology: objectsync_infra::Topology::new(&sandbox.settings.amqp),
            busy_key: key,
            busy_org: org_id,
            backlog: opts.fairness_backlog,
            tries: opts.fairness_tries,
            workers: opts.workers,
            producers: opts.producers,
        },
    )
    .await?;
    f.fair_backlog = fair.backlog_batches;
    f.fair_open_at_start = fair.open_at_start;
    f.fair_open_at_end = fair.open_at_end;
    f.fair_lone_p50_ms = load::percentile(&fair.lone_ms, 0.5);
    f.fair_lone_p99_ms = load::percentile(&fair.lone_ms, 0.99);
    f.fair_lone_max_ms = load::percentile(&fair.lone_ms, 1.0);
    purge(&sandbox.settings, pool).await?;

    let stopping = Instant::now();
    system.stop().await;
    progress(&format!(
        "stopped in {:.1} s",
        stopping.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Where a lone batch's time goes: from its `202` to the worker marking it
/// started (delivery, reading the body, the mark), and from there to its
/// completion (the order gate, the apply transaction up to its last
/// statement), for each of the `(process, 202 time)` given.
async fn lone_split(
    pool: &deadpool_postgres::Pool,
    accepted: &[(i64, chrono::DateTime<Utc>)],
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let ids: Vec<i64> = accepted.iter().map(|(id, _)| *id).collect();
    let rows = client
        .query(
            "select id, started_at, completed_at from processes where id = any($1)",
            &[&ids],
        )
        .await
        .map_err(|e| e.to_string())?;
    let (mut to_start, mut to_end) = (Vec::new(), Vec::new());
    for row in rows {
        let id: i64 = row.get(0);
        let (started, completed): (chrono::DateTime<Utc>, chrono::DateTime<Utc>) =
            (row.get(1), row.get(2));
        if let Some((_, at)) = accepted.iter().find(|(i, _)| *i == id) {
            to_start.push(load::ms_between(*at, started));
            to_end.push(load::ms_between(started, completed));
        }
    }
    Ok((to_start, to_end))
}
