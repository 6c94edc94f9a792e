//! Stage 6: fairness. One organization queues a deep backlog; another
//! posts lone batches meanwhile, one at a time, and each is timed from its
//! `202` to `completed`. The backlog is queued with the workers stopped, so
//! it is all there when they start. The quiet organization's id is the busy
//! one's modulo the number of bulk queues: the case where routing by id
//! would put both in one queue, and the lone batch behind the backlog.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use deadpool_postgres::Pool;
use objectsync_infra::Topology;
use objectsync_ingest::admin::service;
use objectsync_model::DefinitionInput;

use crate::system::System;
use crate::{data, load, progress};

/// What the stage measured.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fairness {
    pub(crate) backlog_batches: usize,
    /// The busy organization's open batches when the first and after the
    /// last lone batch was timed.
    pub(crate) open_at_start: i64,
    pub(crate) open_at_end: i64,
    pub(crate) lone_ms: Vec<f64>,
}

/// An organization whose id collides with `busy_org`'s modulo the number
/// of bulk queues.
async fn quiet_org(pool: &Pool, topology: &Topology, busy_org: i64) -> Result<String, String> {
    let mut client = pool.get().await.map_err(|e| e.to_string())?;
    loop {
        let org = service::create_org(&mut client, "quiet", true)
            .await
            .map_err(|e| e.to_string())?;
        if topology.hash_partition(org.id.get()) != topology.hash_partition(busy_org) {
            // Routing does not depend on ids; the figure is about the ids
            // that would collide if it did.
            continue;
        }
        let def = DefinitionInput::from_json(&data::definition()).map_err(|e| e.to_string())?;
        service::put_object_type(&mut client, org.id, "item", def)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(org.api_key);
    }
}

async fn open_of(pool: &Pool, key_org: i64) -> Result<i64, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    Ok(client
        .query_one(
            "select count(*) from processes
              where org_id = $1 and status in ('queued', 'in_process')",
            &[&key_org],
        )
        .await
        .map_err(|e| e.to_string())?
        .get(0))
}

pub(crate) struct Setup<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) topology: Topology,
    pub(crate) busy_key: &'a str,
    pub(crate) busy_org: i64,
    pub(crate) backlog: usize,
    pub(crate) tries: usize,
    pub(crate) workers: usize,
    pub(crate) producers: usize,
}

/// Runs the stage on `system`, whose workers are stopped on entry and
/// running on return.
pub(crate) async fn run(system: &mut System, s: Setup<'_>) -> Result<Fairness, String> {
    let quiet_key = quiet_org(s.pool, &s.topology, s.busy_org).await?;
    let client = reqwest::Client::new();
    let url = format!("{}/v3/objects/item/batch/upsert", system.address);
    progress(&format!(
        "fairness: queueing {} batches of {} records for one organization",
        s.backlog,
        data::BATCH
    ));
    let bodies = Arc::new(data::bodies("busy", 0, s.backlog * data::BATCH, 1));
    load::post_all(&client, &url, s.busy_key, bodies, s.producers).await?;
    system.start_workers(s.workers)?;
    let mut f = Fairness {
        backlog_batches: s.backlog,
        open_at_start: open_of(s.pool, s.busy_org).await?,
        ..Fairness::default()
    };
    for i in 0..s.tries {
        let body = data::bodies("quiet", i * data::BATCH, data::BATCH, 1).remove(0);
        let posted = load::post_all(&client, &url, &quiet_key, Arc::new(vec![body]), 1).await?;
        let accepted = Utc::now();
        let done = load::wait_completed(s.pool, &posted.process_ids, "quiet batch").await?;
        f.lone_ms.push(load::ms_between(accepted, done));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    f.open_at_end = open_of(s.pool, s.busy_org).await?;
    progress(&format!(
        "fairness: a colliding organization's lone batch, 202 → completed: p50 {:.0} ms, \
         p99 {:.0} ms, max {:.0} ms (the busy one had {} → {} batches open)",
        load::percentile(&f.lone_ms, 0.5),
        load::percentile(&f.lone_ms, 0.99),
        load::percentile(&f.lone_ms, 1.0),
        f.open_at_start,
        f.open_at_end
    ));
    Ok(f)
}
