//! The `workers` table: the workers running now and what each is applying,
//! for the console.
//!
//! Each worker upserts its own row every heartbeat ([`beat`]) and deletes it
//! when it stops gracefully ([`remove`]). A crashed worker cannot delete
//! its row, so readers keep only rows seen within a few heartbeats
//! ([`live`]), and a starting worker deletes the long-gone ones ([`sweep`]).
//! Times are the database's, so workers' clocks need not agree.

use std::time::Duration;

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, ProcessId};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{GenericClient, StoreError, StoreResult};

/// Heartbeats a worker may miss before readers treat it as gone: pass
/// `MISSED_BEATS * heartbeat` to [`live`].
pub const MISSED_BEATS: u32 = 3;

/// A batch a worker is applying: it holds one of the worker's slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applying {
    pub org_id: OrgId,
    pub process_id: ProcessId,
    /// When it took the slot (the worker's clock).
    pub since: DateTime<Utc>,
}

/// A worker's heartbeat: who it is and what it is applying now.
#[derive(Debug, Clone, Copy)]
pub struct Beat<'a> {
    pub id: Uuid,
    pub host: &'a str,
    pub pid: i32,
    pub prefetch: i32,
    pub started_at: DateTime<Utc>,
    pub applying: &'a [Applying],
    /// Every batch it has received and not acknowledged yet (prefetched,
    /// waiting for its turn, or applying): a message a worker holds is not
    /// lost (see `waits::lost_candidates`).
    pub holding: &'a [Applying],
}

/// A worker seen recently.
#[derive(Debug, Clone, Serialize)]
pub struct LiveWorker {
    pub id: Uuid,
    pub host: String,
    pub pid: i32,
    /// Batches it applies at once (`worker.prefetch`).
    pub prefetch: i32,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    pub applying: Vec<Applying>,
    /// Every batch it holds (see [`Beat::holding`]), `applying` included.
    pub holding: Vec<Applying>,
}

fn live_worker(r: &Row) -> StoreResult<LiveWorker> {
    let applying = serde_json::from_value(r.get(6))
        .map_err(|e| StoreError::stored(format!("workers.applying: {e}")))?;
    let holding = serde_json::from_value(r.get(7))
        .map_err(|e| StoreError::stored(format!("workers.holding: {e}")))?;
    Ok(LiveWorker {
        id: r.get(0),
        host: r.get(1),
        pid: r.get(2),
        prefetch: r.get(3),
        started_at: r.get(4),
        seen_at: r.get(5),
        applying,
        holding,
    })
}

/// Writes the worker's row, creating it on the first beat (or again after
/// a [`sweep`] took it while the worker was cut off from the database).
pub async fn beat(c: &impl GenericClient, b: &Beat<'_>) -> StoreResult<()> {
    let json = |list: &[Applying], what: &str| {
        serde_json::to_value(list).map_err(|e| StoreError::stored(format!("workers.{what}: {e}")))
    };
    let (applying, holding) = (json(b.applying, "applying")?, json(b.holding, "holding")?);
    crate::execute(
        c,
        "insert into workers (id, host, pid, prefetch, started_at, seen_at, applying, holding)
         values ($1, $2, $3, $4, $5, now(), $6, $7)
         on conflict (id) do update
            set seen_at = excluded.seen_at, prefetch = excluded.prefetch, applying = excluded.applying,
                holding = excluded.holding",
        &[
            &b.id,
            &b.host,
            &b.pid,
            &b.prefetch,
            &b.started_at,
            &applying,
            &holding,
        ],
    )
    .await
    .map(drop)
}

/// Deletes worker `id`'s row (it is stopping); whether there was one.
pub async fn remove(c: &impl GenericClient, id: Uuid) -> StoreResult<bool> {
    Ok(crate::execute(c, "delete from workers where id = $1", &[&id]).await? > 0)
}

/// Workers seen within `seen_within`, oldest first.
pub async fn live(c: &impl GenericClient, seen_within: Duration) -> StoreResult<Vec<LiveWorker>> {
    crate::query(
        c,
        "select id, host, pid, prefetch, started_at, seen_at, applying, holding from workers
          where seen_at > now() - make_interval(secs => $1)
          order by started_at, id",
        &[&seen_within.as_secs_f64()],
    )
    .await?
    .iter()
    .map(live_worker)
    .collect()
}

/// Workers seen within `within` but not within `live_within`: gone
/// without saying so (a graceful stop deletes its row), maybe holding
/// batches the broker has not taken back yet.
pub async fn gone_silent(
    c: &impl GenericClient,
    live_within: Duration,
    within: Duration,
) -> StoreResult<i64> {
    Ok(crate::query_one(
        c,
        "select count(*) from workers
          where seen_at > now() - make_interval(secs => $2)
            and seen_at <= now() - make_interval(secs => $1)",
        &[&live_within.as_secs_f64(), &within.as_secs_f64()],
    )
    .await?
    .get(0))
}

/// Deletes the rows of workers not seen for `older_than` (crashed ones);
/// how many.
pub async fn sweep(c: &impl GenericClient, older_than: Duration) -> StoreResult<u64> {
    crate::execute(
        c,
        "delete from workers where seen_at < now() - make_interval(secs => $1)",
        &[&older_than.as_secs_f64()],
    )
    .await
}
