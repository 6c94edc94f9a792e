//! The worker's row in the `workers` table: written every
//! `worker.heartbeat_secs` with the batches holding its slots now, deleted
//! when the worker stops gracefully, so that the console shows the workers
//! running and what each is applying.
//!
//! A worker that crashes leaves its row behind; readers ignore rows not seen
//! for `objectsync_store::workers::MISSED_BEATS` heartbeats, and the
//! retention sweeper deletes the rows not seen for `retention.workers_secs`
//! (an hour), so crashes do not pile up.

use std::sync::Arc;
use std::time::Duration;

use objectsync_store::workers::{self, Beat};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::ctx::Ctx;
use crate::error::WorkerError;

/// Who this worker is, as its row says.
struct Me {
    id: Uuid,
    host: String,
    pid: i32,
    prefetch: i32,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// Beats until `stop` fires, then deletes the worker's row. `stop` should
/// fire once in-flight batches are finished, so the row shows them to the
/// end of a graceful shutdown.
pub(crate) async fn run(ctx: Arc<Ctx>, stop: CancellationToken) {
    let me = Me {
        id: Uuid::new_v4(),
        host: hostname(),
        pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
        prefetch: i32::from(ctx.settings.prefetch),
        started_at: chrono::Utc::now(),
    };
    let every = Duration::from_secs(ctx.settings.heartbeat_secs.max(1));
    tracing::info!(worker_id = %me.id, "worker registered");
    loop {
        if let Err(e) = beat(&ctx, &me).await {
            tracing::debug!(error = %e, "heartbeat skipped");
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    if let Err(e) = remove(&ctx, &me).await {
        tracing::warn!(error = %e, worker_id = %me.id, "could not delete the worker's row; it will age out");
    }
}

async fn beat(ctx: &Ctx, me: &Me) -> Result<(), WorkerError> {
    let applying = ctx.local.applying();
    let holding = ctx.local.holding();
    let client = ctx.monitors.get().await?;
    let beat = Beat {
        id: me.id,
        host: &me.host,
        pid: me.pid,
        prefetch: me.prefetch,
        started_at: me.started_at,
        applying: &applying,
        holding: &holding,
    };
    workers::beat(&client, &beat).await?;
    Ok(())
}

async fn remove(ctx: &Ctx, me: &Me) -> Result<(), WorkerError> {
    let client = ctx.monitors.get().await?;
    workers::remove(&client, me.id).await?;
    Ok(())
}

/// The host's name: `HOSTNAME` (set in containers), else the kernel's.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
