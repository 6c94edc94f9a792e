//! Posting batches over HTTP and waiting for their processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde_json::Value;

/// What posting a set of batches gave.
pub(crate) struct Posted {
    pub(crate) process_ids: Vec<i64>,
    /// Milliseconds from sending each request to its 202.
    pub(crate) latencies_ms: Vec<f64>,
    pub(crate) elapsed: Duration,
}

async fn post_one(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<(i64, f64), String> {
    let sent = Instant::now();
    let resp = client
        .post(url)
        .header("api-key", key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    let ms = sent.elapsed().as_secs_f64() * 1000.0;
    if status != 202 {
        return Err(format!("expected 202, got {status}: {v}"));
    }
    v["processId"]
        .as_i64()
        .map(|id| (id, ms))
        .ok_or_else(|| format!("no processId in {v}"))
}

/// Runs `producers` closed-loop producers; each asks `pick` which body to
/// post next (given a counter shared by all of them) until it says stop.
async fn produce<P>(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    producers: usize,
    pick: P,
) -> Result<Posted, String>
where
    P: Fn(usize, usize) -> Option<usize> + Send + Sync + 'static,
{
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let pick = Arc::new(pick);
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let (client, url, key, bodies, next, pick) = (
            client.clone(),
            url.to_owned(),
            key.to_owned(),
            bodies.clone(),
            next.clone(),
            pick.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while let Some(i) = pick(next.fetch_add(1, Ordering::Relaxed), bodies.len()) {
                out.push(post_one(&client, &url, &key, bodies[i].clone()).await?);
            }
            Ok::<_, String>(out)
        }));
    }
    let mut posted = Posted {
        process_ids: Vec::new(),
        latencies_ms: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        for (id, ms) in t.await.map_err(|e| e.to_string())?? {
            posted.process_ids.push(id);
            posted.latencies_ms.push(ms);
        }
    }
    posted.elapsed = started.elapsed();
    Ok(posted)
}

/// Posts every body once, `producers` at a time, as fast as they are answered.
pub(crate) async fn post_all(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    producers: usize,
) -> Result<Posted, String> {
    produce(client, url, key, bodies, producers, |i, n| {
        (i < n).then_some(i)
    })
    .await
}

/// Posts for `duration`, `producers` at a time, cycling through `bodies`.
pub(crate) async fn post_for(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    producers: usize,
    duration: Duration,
) -> Result<Posted, String> {
    let until = Instant::now() + duration;
    produce(client, url, key, bodies, producers, move |i, n| {
        (Instant::now() < until).then_some(i % n)
    })
    .await
}

/// Posts at a fixed rate (open loop: a request every `1/rate` s whatever the
/// answers) for `duration`; returns the 202 latencies.
pub(crate) async fn post_at_rate(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    rate: f64,
    duration: Duration,
) -> Result<Vec<f64>, String> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut i = 0usize;
    while started.elapsed() < duration {
        tick.tick().await;
        let (client, url, key, body) = (
            client.clone(),
            url.to_owned(),
            key.to_owned(),
            bodies[i % bodies.len()].clone(),
        );
        i += 1;
        tasks.push(tokio::spawn(async move {
            post_one(&client, &url, &key, body).await
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.push(t.await.map_err(|e| e.to_string())??.1);
    }
    Ok(latencies)
}

/// Milliseconds from `a` to `b` (0 if `b` is earlier).
pub(crate) fn ms_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    ((b - a).num_microseconds().unwrap_or(0).max(0)) as f64 / 1000.0
}

/// Waits until every process of `ids` ended; returns the latest
/// `completed_at`. Fails if any process failed.
pub(crate) async fn wait_completed(
    pool: &Pool,
    ids: &[i64],
    label: &str,
) -> Result<DateTime<Utc>, String> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "select count(*) filter (where status in ('completed', 'failed')),
                        count(*) filter (where status = 'failed'),
                        max(completed_at)
                   from processes where id = any($1)",
                &[&ids],
            )
            .await
            .map_err(|e| e.to_string())?;
        let (ended, failed): (i64, i64) = (row.get(0), row.get(1));
        if failed > 0 {
            return Err(format!("{failed} processes failed during {label}"));
        }
        if ended as usize == ids.len() {
            return row
                .get::<_, Option<DateTime<Utc>>>(2)
                .ok_or_else(|| "no completion time".into());
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "[bench]   {label}: {ended}/{} batches done after {:.1} s",
                ids.len(),
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "{label}: only {ended}/{} batches done after 10 minutes",
                ids.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sum of a counter column over `ids`.
pub(crate) async fn sum_counter(pool: &Pool, ids: &[i64], column: &str) -> Result<i64, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let sql = format!("select coalesce(sum({column}), 0)::int8 from processes where id = any($1)");
    client
        .query_one(sql.as_str(), &[&ids])
        .await
        .map(|r| r.get(0))
        .map_err(|e| e.to_string())
}

pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    v[(((v.len() - 1) as f64) * p).round() as usize]
}
