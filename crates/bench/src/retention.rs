//! The retention stage (`--only-retention`): days of traffic in minutes.
//! A "day" lasts `day_secs`; processes are kept two days, partitions span a
//! third of a day, the sweeper runs every 2 s. Small batches (10 records,
//! one in ten with a rejected record) come at a steady rate from the start
//! to the end, and at the end of every day the stage reads what is kept
//! (processes, their bytes with indexes, partitions), whether the counts
//! agree with the rows, how long the list of processes, a process and the
//! console's list take, and how long the sweeper took per partition it
//! dropped that day. One process left open from the first minute must
//! still be there at the end. In a database and queues of its own.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use objectsync_ingest::admin::service;
use objectsync_model::DefinitionInput;
use objectsync_testkit::Sandbox;
use serde_json::json;

use crate::Latency;
use crate::reads::{self, Auth, Check, Endpoint};
use crate::system::System;
use crate::{ADMIN_TOKEN, load, progress};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct RetentionOptions {
    pub days: usize,
    /// Seconds of a simulated day: 30 at least (retention is two days, and
    /// the service keeps processes 60 s at least).
    pub day_secs: u64,
    /// Batches a second.
    pub rate: f64,
    pub workers: usize,
}

/// What the end of one day showed.
#[derive(Debug, Clone, Default)]
pub struct Day {
    pub day: usize,
    /// Processes kept, as counted by `process_counts`.
    pub kept: i64,
    /// Whether that equals the rows of `processes`.
    pub exact: bool,
    /// Rejections kept.
    pub rejections: i64,
    /// Bytes of every partition of `processes` and `process_errors`, with
    /// indexes.
    pub bytes: i64,
    pub partitions: i64,
    /// Partitions dropped during the day, and the mean time of one.
    pub dropped: u64,
    pub drop_ms: f64,
    pub list: Latency,
    /// `GET /v3/processes/{id}` of the newest process.
    pub lookup: Latency,
    pub console: Latency,
}

/// Every day's figures, and whether the open process outlived them all.
#[derive(Debug, Clone, Default)]
pub struct RetentionFigures {
    pub days: Vec<Day>,
    pub open_kept: bool,
    pub batches: usize,
}

const BODIES: usize = 100;

/// Bodies of 10 records each over 1,000 records, so that batches of the
/// same records come `BODIES` batches apart; one in ten rejects a record.
fn bodies() -> Vec<Vec<u8>> {
    (0..BODIES)
        .map(|b| {
            let records: Vec<_> = (0..10)
                .map(|k| {
                    let i = b * 10 + k;
                    let price = if b % 10 == 0 && k == 0 {
                        json!("not a number")
                    } else {
                        json!(i)
                    };
                    json!({"identifiers": {"ext_id": format!("ret-{i:04}")},
                           "attributes": {"name": format!("item {i}"), "price": price}})
                })
                .collect();
            json!({ "records": records }).to_string().into_bytes()
        })
        .collect()
}

async fn exec(pool: &Pool, sql: &str) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client.batch_execute(sql).await.map_err(|e| e.to_string())
}

pub async fn run(opts: &RetentionOptions) -> Result<RetentionFigures, String> {
    let day_secs = opts.day_secs.max(30);
    let mut sandbox = Sandbox::create("bench").await;
    sandbox.settings.limits = objectsync_infra::settings::LimitSettings::UNLIMITED;
    let pool = &sandbox.pool;
    let (org, other) = {
        let mut client = pool.get().await.map_err(|e| e.to_string())?;
        let org = service::create_org(&mut client, "bench", true)
            .await
            .map_err(|e| e.to_string())?;
        let other = service::create_org(&mut client, "pinned", true)
            .await
            .map_err(|e| e.to_string())?;
        let def =
            DefinitionInput::from_json(&crate::data::definition()).map_err(|e| e.to_string())?;
        service::put_object_type(&mut client, org.id, "item", def)
            .await
            .map_err(|e| e.to_string())?;
        (org, other)
    };
    // Ids past the migration's first two partitions (a million ids each):
    // from here on the partitions are the sweeper's, sized to this rate.
    exec(
        pool,
        "select processes_add_partition(2000001, 2001001);
         select setval(pg_get_serial_sequence('processes', 'id'), 2000001, false);",
    )
    .await?;
    // A process of another organization left open (its message lost): it
    // must outlive every sweep, and keeps its partition.
    exec(
        pool,
        &format!(
            "insert into processes (org_id, name, object_type, records_total)
             values ({}, 'OBJECT_RECORDS_UPSERT', 'item', 1)",
            other.id
        ),
    )
    .await?;
    let retention = (2 * day_secs).to_string();
    let span = (day_secs / 3).max(1).to_string();
    let system = System::start_with(
        &sandbox.settings,
        ADMIN_TOKEN,
        opts.workers,
        &[
            ("OBJECTSYNC__RETENTION__PROCESSES_SECS", retention.as_str()),
            ("OBJECTSYNC__RETENTION__PARTITION_SECS", span.as_str()),
            ("OBJECTSYNC__RETENTION__PARTITION_MIN_PROCESSES", "1000"),
            ("OBJECTSYNC__RETENTION__SWEEP_SECS", "2"),
            // The open process is not failed while the stage runs.
            ("OBJECTSYNC__WORKER__FAIL_STALE_AFTER_SECS", "0"),
        ],
    )
    .await?;
    let mut system = system;
    let result = days(&system, pool, &org.api_key, opts, day_secs).await;
    system.stop().await;
    let mut figures = result?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    figures.open_kept = client
        .query_one(
            "select exists (select 1 from processes where org_id = $1 and status = 'queued')",
            &[&other.id],
        )
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    Ok(figures)
}

/// Posts for `opts.days` days, reading the figures at the end of each.
async fn days(
    system: &System,
    pool: &Pool,
    key: &str,
    opts: &RetentionOptions,
    day_secs: u64,
) -> Result<RetentionFigures, String> {
    let http = reqwest::Client::new();
    let url = format!("{}/v3/objects/item/batch/upsert", system.address);
    let posting = tokio::spawn({
        let (http, url, key) = (http.clone(), url.clone(), key.to_owned());
        let window = Duration::from_secs(day_secs * opts.days as u64);
        let rate = opts.rate;
        async move { load::post_at_rate(&http, &url, &key, Arc::new(bodies()), rate, window).await }
    });
    let cookie = reads::console_login(&system.address, ADMIN_TOKEN).await?;
    let mut figures = RetentionFigures::default();
    let mut drops = drop_times(system).await?;
    for day in 1..=opts.days {
        tokio::time::sleep(Duration::from_secs(day_secs)).await;
        let now = drop_times(system).await?;
        let dropped = now.0 - drops.0;
        let drop_ms = if dropped > 0 {
            (now.1 - drops.1) / dropped as f64 * 1000.0
        } else {
            0.0
        };
        drops = now;
        let mut d = tables(pool).await?;
        d.day = day;
        d.dropped = dropped;
        d.drop_ms = drop_ms;
        let newest = newest(pool).await?;
        let key_auth = Auth::Key(key);
        let endpoint =
            |name: &'static str, path: String, check: Check| Endpoint { name, path, check };
        d.list = reads::time(
            &http,
            &system.address,
            key_auth,
            &endpoint(
                "list",
                "/v3/processes?limit=50".into(),
                Check::Items("processes", 50),
            ),
        )
        .await?;
        d.lookup = reads::time(
            &http,
            &system.address,
            key_auth,
            &endpoint(
                "lookup",
                format!("/v3/processes/{newest}"),
                Check::Html(format!("\"id\":{newest}")),
            ),
        )
        .await?;
        d.console = reads::time(
            &http,
            &system.address,
            Auth::Cookie(&cookie),
            &endpoint(
                "console",
                "/console/processes".into(),
                Check::Html("/console/processes/".into()),
            ),
        )
        .await?;
        progress(&format!(
            "retention, day {day}: {} processes kept ({}), {:.1} MB in {} partitions, {} dropped ({:.0} ms each), list p50 {:.1} ms",
            d.kept,
            if d.exact {
                "counts exact"
            } else {
                "COUNTS DIFFER"
            },
            d.bytes as f64 / 1e6,
            d.partitions,
            d.dropped,
            d.drop_ms,
            d.list.p50_ms
        ));
        figures.days.push(d);
    }
    figures.batches = posting.await.map_err(|e| e.to_string())??.len();
    Ok(figures)
}

/// The workers' partition drops so far and their time in all, waiting (30 s
/// at most) for workers still starting to answer.
async fn drop_times(system: &System) -> Result<(u64, f64), String> {
    let mut tries = 0;
    loop {
        match system
            .histogram("objectsync_retention_partition_seconds")
            .await
        {
            Ok(h) => return Ok(h),
            Err(_) if tries < 60 => tries += 1,
            Err(e) => return Err(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the tables hold now.
async fn tables(pool: &Pool) -> Result<Day, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let r = client
        .query_one(
            "select (select coalesce(sum(n), 0)::int8 from process_counts),
                    (select count(*) from processes),
                    (select count(*) from process_errors),
                    (select coalesce(sum(pg_total_relation_size(inhrelid)), 0)::int8
                       from pg_inherits
                      where inhparent in ('processes'::regclass, 'process_errors'::regclass)),
                    (select count(*) from pg_inherits where inhparent = 'processes'::regclass)",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    let (counted, rows): (i64, i64) = (r.get(0), r.get(1));
    Ok(Day {
        kept: counted,
        exact: counted == rows,
        rejections: r.get(2),
        bytes: r.get(3),
        partitions: r.get(4),
        ..Day::default()
    })
}

/// The newest process.
async fn newest(pool: &Pool) -> Result<i64, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    Ok(client
        .query_one("select max(id) from processes", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0))
}

impl RetentionFigures {
    /// One row per day.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| day | processes kept | counts exact | rejections kept | MB (with indexes) | partitions | partitions dropped | ms per drop | list p50 / p99 ms | process p50 ms | console list p50 ms |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for d in &self.days {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {:.1} | {} | {} | {:.0} | {:.1} / {:.1} | {:.1} | {:.1} |\n",
                d.day,
                d.kept,
                if d.exact { "yes" } else { "no" },
                d.rejections,
                d.bytes as f64 / 1e6,
                d.partitions,
                d.dropped,
                d.drop_ms,
                d.list.p50_ms,
                d.list.p99_ms,
                d.lookup.p50_ms,
                d.console.p50_ms
            ));
        }
        out.push_str(&format!(
            "\n{} batches posted; the process left open from the first minute {}.\n",
            self.batches,
            if self.open_kept {
                "is still there"
            } else {
                "WAS REMOVED"
            }
        ));
        out
    }
}
