//! Stage 7: what completion events and webhooks cost on the apply path,
//! and how soon they arrive. Rounds of two passes of fresh inserts end to
//! end, one without a webhook and one with one registered (a receiver in
//! this process that answers 200 at once), in alternating order so that
//! the table growing between passes does not count as the webhook's cost;
//! the cost is the median of the rounds' ratios, each round's shown too (a
//! single pass on this 2-core machine swings by ±10 %). Latencies: process
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
use crate::{data, load, progress};

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

/// One pass of `records` fresh inserts: records/s, and the processes.
async fn pass(s: &Setup<'_>, run: &str) -> Result<(f64, Vec<i64>), String> {
    let client = reqwest::Client::new();
    let url = format!("{}/v3/objects/item/batch/upsert", s.address);
    let bodies = Arc::new(data::bodies(run, 0, s.records, 1));
    let t0 = Utc::now();
    let posted = load::post_all(&client, &url, s.key, bodies, s.producers).await?;
    let done = load::wait_completed(s.pool, &posted.process_ids, run).await?;
    let secs = (done - t0).num_microseconds().unwrap_or(1).max(1) as f64 / 1e6;
    Ok((s.records as f64 / secs, posted.process_ids))
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

/// Rounds of the comparison: each has a pass without and one with a
/// webhook, in alternating order, so that neither the table's growth nor
/// a slow moment of the machine falls on one side only.
const ROUNDS: usize = 3;

pub(crate) async fn run(s: &Setup<'_>) -> Result<EventFigures, String> {
    let (_conn, events) = listen(s).await?;
    let receiver = Receiver::start().await;
    let mut ratios = Vec::with_capacity(ROUNDS);
    let (mut without_all, mut with_all) = (Vec::new(), Vec::new());
    let mut ids = Vec::new();
    let mut drained = Duration::ZERO;
    for round in 0..ROUNDS {
        let mut without = 0.0;
        let mut with = 0.0;
        for webhook_first in [round % 2 == 1, round % 2 == 0] {
            if webhook_first {
                let already = receiver.received().len();
                let webhook = register(s, &receiver.url).await?;
                let (rps, pass_ids) = pass(s, &format!("ev-w{round}")).await?;
                let started = Instant::now();
                receiver
                    .wait_for(already + pass_ids.len(), Duration::from_secs(120))
                    .await;
                drained = started.elapsed();
                unregister(s, webhook).await?;
                with = rps;
                ids = pass_ids;
            } else {
                without = pass(s, &format!("ev-n{round}")).await?.0;
            }
        }
        progress(&format!(
            "events: round {}/{ROUNDS}: inserts {without:.0} records/s without a webhook, {with:.0} with ({:+.1} %)",
            round + 1,
            (1.0 - with / without.max(1.0)) * 100.0
        ));
        ratios.push(with / without.max(1.0));
        without_all.push(without);
        with_all.push(with);
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
