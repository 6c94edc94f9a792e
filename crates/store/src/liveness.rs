//! Finding processes that stay open long after they could have been
//! applied: the defense in depth behind "every 202 finishes".
//!
//! A process is *stale* when it is still `queued` or `in_process` and no
//! worker has received its batch for a while (`last_delivery_at`, or
//! `created_at` if it was never delivered). The worker's monitor reports
//! each stale process once and fails those stale for much longer; operators
//! list them with `objectsync-ingest admin stale-processes`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use objectsync_model::{OrgId, ProcessId};
use serde::Serialize;
use tokio_postgres::Row;

use crate::{GenericClient, StoreResult};

/// One open process that has not been delivered for a while.
#[derive(Debug, Clone, Serialize)]
pub struct StaleProcess {
    pub org_id: OrgId,
    pub id: ProcessId,
    pub name: String,
    pub status: String,
    pub object_type: String,
    pub deliveries: i32,
    pub created_at: DateTime<Utc>,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "org_id, id, name::text, status::text, object_type, deliveries,
    created_at, last_delivery_at, last_error";

/// Key of the advisory lock one monitor holds per sweep ("objmon").
const SWEEP_LOCK: i64 = 0x006f_626a_6d6f_6e00;

/// Takes, in transaction `tx`, the lock that lets one monitor at a time
/// report and fail stale processes; `false` when another monitor holds it
/// (this sweep then leaves the reporting to that one).
pub async fn try_lock_sweep(tx: &impl GenericClient) -> StoreResult<bool> {
    Ok(
        crate::query_one(tx, "select pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
            .await?
            .get(0),
    )
}

/// Open processes not delivered for `secs` seconds (the same condition in
/// every statement below).
const STALE: &str = "status in ('queued', 'in_process')
    and coalesce(last_delivery_at, created_at) < now() - make_interval(secs => $1)";

fn from_row(r: &Row) -> StaleProcess {
    StaleProcess {
        org_id: r.get(0),
        id: r.get(1),
        name: r.get(2),
        status: r.get(3),
        object_type: r.get(4),
        deliveries: r.get(5),
        created_at: r.get(6),
        last_delivery_at: r.get(7),
        last_error: r.get(8),
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Processes stale for `after`, oldest first, at most `limit`.
pub async fn list(
    client: &impl GenericClient,
    after: Duration,
    limit: i64,
) -> StoreResult<Vec<StaleProcess>> {
    let sql = format!("select {COLUMNS} from processes where {STALE} order by created_at limit $2");
    let rows = crate::query(client, &sql, &[&secs(after), &limit]).await?;
    Ok(rows.iter().map(from_row).collect())
}

/// How many processes are stale for `after` now.
pub async fn count(client: &impl GenericClient, after: Duration) -> StoreResult<i64> {
    let sql = format!("select count(*) from processes where {STALE}");
    Ok(client
        .query_one(sql.as_str(), &[&secs(after)])
        .await?
        .get(0))
}

/// Marks the processes stale for `after` that were not reported yet, and
/// returns them (each is reported once).
pub async fn mark_newly_stale(
    client: &impl GenericClient,
    after: Duration,
) -> StoreResult<Vec<StaleProcess>> {
    let sql = format!(
        "update processes set stale_at = now() where {STALE} and stale_at is null
         returning {COLUMNS}"
    );
    let rows = crate::query(client, &sql, &[&secs(after)]).await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Fails the processes stale for `after`, with `reason`; returns them.
pub async fn fail_stale(
    client: &impl GenericClient,
    after: Duration,
    reason: &str,
) -> StoreResult<Vec<StaleProcess>> {
    let sql = format!(
        "update processes
            set status = 'failed', error = $2, completed_at = clock.now,
                footprint_keys = null, waiting_for = null
           from (select pg_current_xact_id() as xid, clock_timestamp() as now) as clock
          where {STALE}
         returning {COLUMNS}"
    );
    let rows = crate::query(client, &sql, &[&secs(after), &reason]).await?;
    Ok(rows.iter().map(from_row).collect())
}
