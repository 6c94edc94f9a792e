//! Prometheus metrics: one recorder per process, rendered by `GET /metrics`
//! on both binaries. Names follow Prometheus conventions (`_total` counters,
//! `_seconds` histograms), prefixed `objectsync_`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `objectsync_http_requests_total` | `method`, `route`, `status` | requests answered by ingest |
//! | `objectsync_http_request_duration_seconds` | `method`, `route`, `status` | their latency |
//! | `objectsync_batches_accepted_total` | `kind` | batches made durable (202) |
//! | `objectsync_inbox_messages_total` | `outcome`, `status` | inbox messages settled by ingest: `accepted` (202), `refused` (answered, or dropped without `reply_to`, with the HTTP API's 4xx or 500), `requeued` (the database or broker could not take it: handed back to the queue); `status` is the HTTP status the answer carries (503 for `requeued`, which is not answered) |
//! | `objectsync_inbox_message_duration_seconds` | `outcome` | from an inbox message's delivery to its acknowledgement |
//! | `objectsync_inbox_replies_total` | `result` | answers published to `reply_to`: `confirmed`, or `unroutable` (no such queue: the producer is gone) |
//! | `objectsync_batches_routed_total` | `lane` | batches ingest routed to the `express` or a `bulk` queue |
//! | `objectsync_bulk_queues_assigned_total` | | backlogs given a bulk queue (see `Topology`) |
//! | `objectsync_batches_total` | `outcome` | deliveries settled by workers: `applied`, `already_done`, `orphan`, `requeued`, `gave_way`, `dead_lettered` |
//! | `objectsync_batches_blocked_total` | | deliveries that waited more than a second for older batches on the same records (or gave way sooner) |
//! | `objectsync_records_total` | `outcome` | records applied: `created`, `updated`, `deleted`, `failed` |
//! | `objectsync_batch_apply_seconds` | | time to apply a batch, retries included |
//! | `objectsync_queue_lag_seconds` | | time from 202 to a worker's first pick-up |
//! | `objectsync_batch_retries_total` | | transient failures retried within a delivery |
//! | `objectsync_processes_failed_total` | `reason` | processes marked `failed`: `permanent`, `retries_exhausted`, `dead_lettered`, `unreadable`, `panic`, `stale`, `lost` (its message provably gone while batches waited for it), `misnamed` (its message's headers named another organization) |
//! | `objectsync_processes_stale` | | gauge: processes open with no delivery for `worker.stale_after_secs` |
//! | `objectsync_processes_stale_total` | | processes reported stale (each once) |
//! | `objectsync_read_fallbacks_total` | | lag-tolerant reads (record lists, console overview) served by the primary because the configured standby could not take them or lagged too far behind |
//! | `objectsync_read_standby_lag_seconds` | | gauge: how far the read standby was behind the primary at the last measurement (ingest, with a standby and a maximum lag) |
//! | `objectsync_processes_blocked` | | gauge: open processes waiting for an older process of their organization that is still open |
//! | `objectsync_events_published_total` | | completion events published (confirmed by the broker) |
//! | `objectsync_event_publish_lag_seconds` | | process end → its event confirmed by the broker |
//! | `objectsync_webhook_attempts_total` | `outcome` | webhook delivery attempts: `delivered`, `retry`, `failed` |
//! | `objectsync_webhook_delivery_lag_seconds` | | process end → its webhook delivery answered 2xx |
//! | `objectsync_retention_removed_total` | `what` | removed by the retention sweeper: `processes`, `rejections`, `partitions` (of `processes` dropped), `dead_letters`, `idempotency_keys`, `workers` |
//! | `objectsync_retention_partition_seconds` | | time to detach and drop one expired partition of `processes` |
//! | `objectsync_retention_sweep_seconds` | | time of a whole retention sweep |
//! | `objectsync_retention_partitions_added_total` | | partitions of `processes` added ahead of the ids being drawn |
//! | `objectsync_processes_partitions` | | gauge: partitions of `processes` after the last sweep |

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets, in seconds: from a fast request to a slow batch.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return it).
/// `None` if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric of this process.
pub fn render() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}
