//! Stage 7: what completion events and webhooks cost on the apply path,
//! and how soon they arrive. Rounds of two passes of fresh inserts end to
//! end, one without a webhook and one with one registered (a receiver in
//! this process that answers 200 at once), in alternating order so that
//! the table growing between passes does not count as the webhook's cost,
//! and each after a checkpoint; the cost is the median of the rounds'
//! ratios, each round's shown too (a single pass on this 2-core machine
//! swings by ±10 %). Latencies: process
//! end (`completed_at`) → the event consumed from `{prefix}.events`, and →
//! the webhook delivery received, per process of the last pass with a
//! webhook.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use lapin::Connection;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use objectsync_infra::Settings;
use objectsync_testkit::events::Receiver;

use crate::report::EventFigures;
use crate::{cpu, data, load, progress};

/// What the stage needs of the running system.
pub(crate) struct Setup<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) pool: &'a Pool,
    pub(crate) address: &'a str,
    pub(crate) admin_token: &'a str,
    pub(crate) key: &'a str,
    pub(crate) org_id: i64,
    pub(crate) records: usize,
    pub(crate) producers: usize,
}

/// When each process's event came off the exchange.
type Arrivals = Arc<Mutex<HashMap<i64, DateTime<Utc>>>>;

/// Consumes the organization's events from a queue of its own (deleted
/// with the connection), noting when each arrived.
async fn listen(s: &Setup<'_>) -> Result<(Connection, Arrivals), String> {
    let conn = objectsync_infra::amqp::connect(&s.settings.amqp, "bench-events")
        .await
        .map_err(|e| e.to_string())?;
    let channel = conn.create_channel().await.map_err(|e| e.to_string())?;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare("".into(), exclusive, FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    let exchange = objectsync_infra::Topology::new(&s.settings.amqp).events_exchange;
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.as_str().into(),
            format!("process.*.{}.*", s.org_id).as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "bench-events".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let arrivals = Arrivals::default();
    let seen = arrivals.clone();
    tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            let at = Utc::now();
            let body: serde_json::Value = serde_json::from_slice(&d.data).unwrap_or_default();
            if let Some(pid) = body["processId"].as_i64() {
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(pid)
                    .or_insert(at);
            }
        }
    });
    Ok((conn, arrivals))
}

/// What one pass measured.
struct Pass {
    rps: f64,
    /// CPU the services spent per 1,000 records, in ms, where `/proc` tells.
    cpu_ms: Option<f64>,
    ids: Vec<i64>,
}

/// One pass of `records` fresh inserts.
async fn pass(s: &Setup<'_>, run: &str) -> Result<Pass, String> {
    let client = reqwest::Client::new();
    let url = format!("{}/v3/objects/item/batch/upsert", s.address);
    let bodies = Arc::new(data::bodies(run, 0, s.records, 1));
    // Every pass starts right after a checkpoint: one that began in the
    // middle of a pass (a pass writes about a third of max_wal_size) made
    // that pass alone pay for its writes and the full pages after it.
    crate::quiesce(s.pool).await;
    let cpu = cpu::read();
    let t0 = Utc::now();
    let posted = load::post_all(&client, &url, s.key, bodies, s.producers).await?;
    let done = load::wait_completed(s.pool, &posted.process_ids, run).await?;
    let secs = (done - t0).num_microseconds().unwrap_or(1).max(1) as f64 / 1e6;
    if let Ok(c) = s.pool.get().await
        && let Ok(r) = c
            .query_one(
                "select extract(epoch from max(created_at) - min(created_at))::float8 * 1000,
                        percentile_cont(0.5) within group (order by extract(epoch from started_at - created_at)::float8 * 1000),
                        max(extract(epoch from started_at - created_at)::float8 * 1000),
                        percentile_cont(0.5) within group (order by extract(epoch from completed_at - started_at)::float8 * 1000),
                        max(extract(epoch from completed_at - started_at)::float8 * 1000)
                   from processes where id = any($1)",
                &[&posted.process_ids],
            )
            .await
    {
        let ms = |i: usize| r.get::<_, Option<f64>>(i).unwrap_or(0.0);
        progress(&format!(
            "  {run}: {:.1} s; 202s over {:.0} ms; queued p50 {:.0} ms max {:.0}; applying p50 {:.0} ms max {:.0}",
            secs,
            ms(0),
            ms(1),
            ms(2),
            ms(3),
            ms(4)
        ));
    }
    Ok(Pass {
        rps: s.records as f64 / secs,
        cpu_ms: cpu::others_since(cpu).map(|c| c * 1e6 / s.records as f64),
        ids: posted.process_ids,
    })
}

/// Milliseconds from each process's end to its arrival, for those that
/// arrived.
async fn latencies(
    pool: &Pool,
    ids: &[i64],
    arrived: &HashMap<i64, DateTime<Utc>>,
) -> Result<Vec<f64>, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let rows = client
        .query(
            "select id, completed_at from processes where id = any($1)",
            &[&ids],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let ended: DateTime<Utc> = r.get::<_, Option<DateTime<Utc>>>(1)?;
            let at = arrived.get(&r.get::<_, i64>(0))?;
            Some((*at - ended).num_microseconds()?.max(0) as f64 / 1000.0)
        })
        .collect())
}

/// Registers `url` as the organization's webhook through the admin API.
async fn register(s: &Setup<'_>, url: &str) -> Result<i64, String> {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/admin/organizations/{}/webhooks",
            s.address, s.org_id
        ))
        .header("admin-token", s.admin_token)
        .json(&serde_json::json!({ "url": url }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    body["id"]
        .as_i64()
        .ok_or_else(|| format!("the webhook was not registered: {body}"))
}

async fn unregister(s: &Setup<'_>, id: i64) -> Result<(), String> {
    reqwest::Client::new()
        .delete(format!(
            "{}/admin/organizations/{}/webhooks/{id}",
            s.address, s.org_id
        ))
        .header("admin-token", s.admin_token)
        .send()
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// One pass with a webhook registered to `receiver`, and how long after
/// it the last of its deliveries arrived.
async fn with_webhook(
    s: &Setup<'_>,
    receiver: &Receiver,
    round: usize,
) -> Result<(Pass, Duration), String> {
    let already = receiver.received().len();
    let webhook = register(s, &receiver.url).await?;
    let p = pass(s, &format!("ev-w{round}")).await?;
    let started = Instant::now();
    receiver
        .wait_for(already + p.ids.len(), Duration::from_secs(120))
        .await;
    let drained = started.elapsed();
    unregister(s, webhook).await?;
    Ok((p, drained))
}

/// Rounds of the comparison: each has a pass without and one with a
/// webhook, in alternating order, so that neither the table's growth nor
/// a slow moment of the machine falls on one side only.
const ROUNDS: usize = 5;

pub(crate) async fn run(s: &Setup<'_>) -> Result<EventFigures, String> {
    let (_conn, events) = listen(s).await?;
    let receiver = Receiver::start().await;
    let mut ratios = Vec::with_capacity(ROUNDS);
    let mut cpu_ratios = Vec::with_capacity(ROUNDS);
    let mut without_all = Vec::with_capacity(ROUNDS);
    let mut ids = Vec::new();
    let mut drained = Duration::ZERO;
    for round in 0..ROUNDS {
        // Even rounds pass without the webhook first, odd ones with it.
        let (without, (with, drain)) = if round % 2 == 0 {
            let without = pass(s, &format!("ev-n{round}")).await?;
            (without, with_webhook(s, &receiver, round).await?)
        } else {
            let with = with_webhook(s, &receiver, round).await?;
            (pass(s, &format!("ev-n{round}")).await?, with)
        };
        drained = drain;
        ids.clone_from(&with.ids);
        let ratio = with.rps / without.rps.max(1.0);
        let cpu = with
            .cpu_ms
            .zip(without.cpu_ms)
            .map(|(w, n)| w / n.max(1e-9));
        progress(&format!(
            "events: round {}/{ROUNDS}: inserts {:.0} records/s without a webhook, {:.0} with ({:+.1} %); CPU of the services per 1,000 records {} ms without, {} ms with",
            round + 1,
            without.rps,
            with.rps,
            (1.0 - ratio) * 100.0,
            without.cpu_ms.map_or("?".into(), |c| format!("{c:.0}")),
            with.cpu_ms.map_or("?".into(), |c| format!("{c:.0}")),
        ));
        ratios.push(ratio);
        cpu_ratios.extend(cpu);
        without_all.push(without.rps);
    }
    let all = receiver.received();
    let ratio = load::percentile(&ratios, 0.5);
    let without = load::percentile(&without_all, 0.5);

    let mut delivered = HashMap::new();
    for r in &all {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        if let Some(pid) = body["processId"].as_i64() {
            delivered.entry(pid).or_insert(r.at);
        }
    }
    let webhook_ms = latencies(s.pool, &ids, &delivered).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let arrived = events.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let event_ms = latencies(s.pool, &ids, &arrived).await?;
    let f = EventFigures {
        without_rps: without,
        with_rps: without * ratio,
        round_costs: ratios.iter().map(|r| (1.0 - r) * 100.0).collect(),
        cpu_round_costs: cpu_ratios.iter().map(|r| (r - 1.0) * 100.0).collect(),
        batches: ids.len(),
        delivered: ids.iter().filter(|id| delivered.contains_key(id)).count(),
        events: event_ms.len(),
        drained_after_ms: drained.as_secs_f64() * 1000.0,
        webhook_p50_ms: load::percentile(&webhook_ms, 0.5),
        webhook_p99_ms: load::percentile(&webhook_ms, 0.99),
        event_p50_ms: load::percentile(&event_ms, 0.5),
        event_p99_ms: load::percentile(&event_ms, 0.99),
    };
    progress(&format!(
        "events: {}/{} webhooks, {}/{} events; process end → webhook p50 {:.1} ms p99 {:.1} ms, → event p50 {:.1} ms p99 {:.1} ms",
        f.delivered,
        f.batches,
        f.events,
        f.batches,
        f.webhook_p50_ms,
        f.webhook_p99_ms,
        f.event_p50_ms,
        f.event_p99_ms
    ));
    Ok(f)
}
