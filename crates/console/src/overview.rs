//! The overview: the backlog, what was applied in the last hour, latency,
//! failures, dead letters, live workers and queue depths. The live part is
//! a fragment the page fetches again every few seconds.

use axum::extract::State;
use axum::response::Html;
use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use maud::{Markup, html};
use objectsync_store::{dead_letters, operations, waits, workers};

use super::ConsoleResult;
use super::ended::this_minute;
use super::layout::{self, Section, count, page, seconds};
use super::session::Session;
use crate::{Console, QueueDepth};

async fn render(state: &Console, session: &Session) -> ConsoleResult<Markup> {
    let live = live_markup(state).await?;
    Ok(page(
        "Overview",
        Some(Section::Overview),
        Some(session),
        html! {
            h1 { "Overview" }
            section #live data-refresh="/console/overview/live" data-every="3" { (live) }
        },
    ))
}

pub(crate) async fn show(
    State(state): State<Console>,
    session: Session,
) -> ConsoleResult<Html<String>> {
    Ok(Html(render(&state, &session).await?.into_string()))
}

/// The fragment the overview refreshes.
pub(crate) async fn live(
    State(state): State<Console>,
    _session: Session,
) -> ConsoleResult<Html<String>> {
    Ok(Html(live_markup(&state).await?.into_string()))
}

async fn live_markup(state: &Console) -> ConsoleResult<Markup> {
    // The figures tolerate a little lag: a standby's, when configured.
    let read = state.reads.get().await?;
    let client = &*read;
    let backlog = operations::backlog(client).await?;
    let blocked = waits::blocked_count(client).await?;
    // Sixty bars, one a minute, the current minute last.
    let now = this_minute();
    let primary = state.pool.get().await?;
    let hour = state
        .ended
        .since(&primary, client, now - Duration::minutes(59))
        .await?;
    drop(primary);
    let failures = operations::failures(client).await?;
    let dead = dead_letters::unresolved_count(client).await?;
    let seen_within = state.worker_heartbeat * workers::MISSED_BEATS;
    let workers = workers::live(client, seen_within).await?;
    let queues = state
        .queues
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();

    let per_minute = per_minute(&hour.per_minute, now);
    let figures = Figures {
        queued: backlog.queued,
        in_process: backlog.in_process,
        blocked,
        last_hour: hour.per_minute.values().sum(),
        p50: hour.latencies.quantile(0.5),
        p99: hour.latencies.quantile(0.99),
        failed_24h: failures.iter().map(|f| f.processes).sum(),
        dead,
        workers: workers.len(),
    };
    Ok(html! {
        (cards(&figures))
        h2 { "Records applied per minute, last hour" }
        (layout::bars(&per_minute, "records applied per minute"))
        h2 { "Workers" }
        (workers_table(&workers, seen_within))
        h2 { "Queues" }
        (queues_table(&queues))
        h2 { "Failed processes, last 24 hours, by reason" }
        (failures_table(&failures))
    })
}

/// Records applied in each of the sixty minutes up to `now`, oldest first.
fn per_minute(records: &BTreeMap<DateTime<Utc>, i64>, now: DateTime<Utc>) -> Vec<i64> {
    let mut per_minute = vec![0_i64; 60];
    for (minute, records) in records {
        let back = (now - *minute).num_minutes();
        if (0..60).contains(&back) {
            per_minute[59 - back as usize] = *records;
        }
    }
    per_minute
}

/// The overview's headline figures.
struct Figures {
    queued: i64,
    in_process: i64,
    blocked: i64,
    last_hour: i64,
    p50: Option<f64>,
    p99: Option<f64>,
    failed_24h: i64,
    dead: i64,
    workers: usize,
}

fn cards(f: &Figures) -> Markup {
    html! {
        div.cards {
            div.card #open-queued { div.value { (count(f.queued)) } div.label { "queued" } }
            div.card #open-in-process { div.value { (count(f.in_process)) } div.label { "in process" } }
            div.card #blocked title="batches waiting for an older batch of their organization on the same records that is not applied yet" {
                div.value { (count(f.blocked)) }
                div.label { "waiting for an older batch" }
            }
            div.card #applied-hour { div.value { (count(f.last_hour)) } div.label { "records applied, last hour" } }
            div.card #latency-p50 title="within 5 %" { div.value { (seconds(f.p50)) } div.label { "202 → completed, p50 (last hour)" } }
            div.card #latency-p99 title="within 5 %" { div.value { (seconds(f.p99)) } div.label { "202 → completed, p99 (last hour)" } }
            div.card #failed-day { div.value { (count(f.failed_24h)) } div.label { "processes failed, 24 h" } }
            div.card #dead-letters { div.value { a href="/console/dead-letters" { (count(f.dead)) } } div.label { "dead letters to look at" } }
            div.card #workers-live { div.value { (f.workers) } div.label { "live workers" } }
        }
    }
}

fn workers_table(workers: &[workers::LiveWorker], seen_within: std::time::Duration) -> Markup {
    html! {
        @if workers.is_empty() {
            p.notice.error { "No worker has been seen in the last " (seen_within.as_secs()) " s: accepted batches wait in the queues." }
        } @else {
            table #workers {
                thead { tr { th { "worker" } th { "host" } th.num { "pid" } th.num { "prefetch" } th { "started" } th { "applying now" } th { "waiting for their turn" } } }
                tbody {
                    @for w in workers {
                        tr {
                            td { code { (w.id.to_string().get(..8).unwrap_or_default()) } }
                            td { (w.host) }
                            td.num { (w.pid) }
                            td.num { (w.prefetch) }
                            td { (layout::time(w.started_at)) }
                            td {
                                @if w.applying.is_empty() { span.muted { "idle" } }
                                @for a in &w.applying {
                                    a href=(format!("/console/processes/{}/{}", a.org_id.get(), a.process_id.get())) {
                                        "#" (a.process_id.get())
                                    }
                                    " "
                                }
                            }
                            td.waiting { (waiting(w)) }
                        }
                    }
                }
            }
        }
    }
}

fn queues_table(queues: &[QueueDepth]) -> Markup {
    html! {
        @if queues.is_empty() {
            p.muted { "Not read yet (every 5 s)." }
        } @else {
            p.muted { "As RabbitMQ last reported them (read every 5 s)." }
            table #queues {
                thead { tr { th { "queue" } th.num { "messages" } th.num { "consumers" } } }
                tbody {
                    @for q in queues {
                        tr { td { (q.name) } td.num { (count(i64::from(q.messages))) } td.num { (q.consumers) } }
                    }
                }
            }
        }
    }
}

fn failures_table(failures: &[operations::FailureReason]) -> Markup {
    html! {
        @if failures.is_empty() {
            p.muted { "None." }
        } @else {
            table {
                thead { tr { th { "reason" } th.num { "processes" } th { "last" } } }
                tbody {
                    @for f in failures {
                        tr {
                            td { a href="/console/processes?status=failed" { (f.reason) } }
                            td.num { (count(f.processes)) }
                            td { (layout::time(f.last_seen)) }
                        }
                    }
                }
            }
        }
    }
}

/// The batches a worker holds that do not hold one of its slots: received,
/// and waiting for older batches on the same records (or for a slot).
fn waiting(w: &workers::LiveWorker) -> Markup {
    let applying: Vec<_> = w.applying.iter().map(|a| a.process_id).collect();
    html! {
        @for h in w.holding.iter().filter(|h| !applying.contains(&h.process_id)) {
            a href=(format!("/console/processes/{}/{}", h.org_id.get(), h.process_id.get())) {
                "#" (h.process_id.get())
            }
            " "
        }
    }
}
