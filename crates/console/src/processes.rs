//! Processes: found by organization, object type, status and time, newest
//! first, a page at a time; and one process with its counts, deliveries,
//! timings and rejected records.

use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, Redirect};
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::{Markup, html};
use objectsync_model::limits::MAX_REASON_CHARS;
use objectsync_model::{ObjectTypeName, OrgId, ProcessId, ProcessStatus};
use objectsync_store::operations::{self, Filter, ProcessRow};
use objectsync_store::processes::{self, StoredRejection};
use objectsync_store::waits::{self, Waits};
use serde::Deserialize;

use super::layout::{self, Section, count, csrf, page};
use super::session::{Session, url_escape};
use super::{ConsoleError, ConsoleResult};
use crate::Console;

const PAGE: i64 = 50;

/// How many processes a filtered list looks at, at most, for a page: a
/// filter on an object type or on times has no index, and this keeps such a
/// page as fast on a table of millions as on a small one (28.5 ms measured
/// on the bench's machine, where the whole walk of a million took 75 ms).
const WALK: i64 = 100_000;

/// The filter form's fields, all optional; empty means any.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    org: Option<String>,
    object_type: Option<String>,
    status: Option<String>,
    /// `YYYY-MM-DDTHH:MM` (UTC), as an `<input type=datetime-local>` sends it.
    after: Option<String>,
    before: Option<String>,
    /// Keyset: processes older than this id.
    older_than: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn time_field(name: &str, v: &Option<String>) -> ConsoleResult<Option<DateTime<Utc>>> {
    given(v)
        .map(|s| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
                .map(|t| t.and_utc())
                .map_err(|_| {
                    ConsoleError::BadRequest(format!("{name}: '{s}' is not a date and time"))
                })
        })
        .transpose()
}

fn id_field(name: &str, v: &Option<String>) -> ConsoleResult<Option<i64>> {
    given(v)
        .map(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConsoleError::BadRequest(format!("{name}: '{s}' is not an id")))
        })
        .transpose()
}

impl ListQuery {
    fn filter(&self) -> ConsoleResult<Filter> {
        let status = given(&self.status)
            .map(|s| s.parse::<ProcessStatus>().map_err(ConsoleError::BadRequest))
            .transpose()?;
        // Checked here: PostgreSQL refuses text holding NUL with an error.
        let object_type = given(&self.object_type)
            .map(|s| {
                ObjectTypeName::parse(s).map_err(|e| {
                    ConsoleError::BadRequest(format!("object type: {s:?} is not a type name: {e}"))
                })
            })
            .transpose()?;
        Ok(Filter {
            org: id_field("organization", &self.org)?.map(OrgId),
            object_type: object_type.map(|t| t.as_str().to_owned()),
            status,
            created_after: time_field("after", &self.after)?,
            created_before: time_field("before", &self.before)?,
            before_id: id_field("older than", &self.older_than)?.map(ProcessId),
        })
    }

    /// This query with another keyset position, for the pager.
    fn with_older_than(&self, id: i64) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("org", &self.org),
            ("object_type", &self.object_type),
            ("status", &self.status),
            ("after", &self.after),
            ("before", &self.before),
        ] {
            if let Some(v) = given(v) {
                parts.push(format!("{k}={}", url_escape(v)));
            }
        }
        parts.push(format!("older_than={id}"));
        format!("/console/processes?{}", parts.join("&"))
    }
}

fn filters(q: &ListQuery) -> Markup {
    let value = |v: &Option<String>| given(v).unwrap_or_default().to_owned();
    html! {
        form.filters method="get" action="/console/processes" {
            label { "organization" input name="org" size="8" value=(value(&q.org)); }
            label { "object type" input name="object_type" size="12" value=(value(&q.object_type)); }
            label { "status"
                select name="status" {
                    option value="" { "any" }
                    @for s in ["queued", "in_process", "completed", "failed"] {
                        option value=(s) selected[given(&q.status) == Some(s)] { (s) }
                    }
                }
            }
            label { "created after (UTC)" input type="datetime-local" name="after" value=(value(&q.after)); }
            label { "created before (UTC)" input type="datetime-local" name="before" value=(value(&q.before)); }
            button type="submit" { "Filter" }
            a href="/console/processes" { "clear" }
        }
    }
}

fn process_link(r: &ProcessRow) -> String {
    format!("/console/processes/{}/{}", r.org.get(), r.process.id.get())
}

pub(crate) async fn list(
    State(state): State<Console>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> ConsoleResult<Html<String>> {
    let filter = q.filter()?;
    let client = state.pool.get().await?;
    let found = operations::search(&client, &filter, PAGE, WALK).await?;
    let rows = found.rows;
    let body = html! {
        h1 { "Processes" }
        (filters(&q))
        @if rows.is_empty() {
            // With the walk's bound reached, the note below says more.
            @if found.looked_down_to.is_none() { p.muted { "No process matches." } }
        } @else {
            table #processes {
                thead { tr {
                    th.num { "id" } th.num { "org" } th { "type" } th { "kind" } th { "status" }
                    th.num { "records" } th.num { "failed" } th.num { "deliveries" } th { "created" } th { "took" }
                } }
                tbody {
                    @for r in &rows {
                        tr {
                            td.num { a href=(process_link(r)) { (r.process.id.get()) } }
                            td.num { a href=(format!("/console/organizations/{}", r.org.get())) { (r.org.get()) } }
                            td { (r.process.object_type) }
                            td { (r.process.kind.name()) }
                            td { (layout::status(r.process.status.as_str())) }
                            td.num { (count(i64::from(r.process.total))) }
                            td.num { (count(i64::from(r.process.counts.failed))) }
                            td.num { (r.deliveries) }
                            td { (layout::time(r.process.created_at)) }
                            td { (took(r)) }
                        }
                    }
                }
            }
            @if rows.len() as i64 == PAGE {
                @if let Some(last) = rows.last() {
                    p.pager { a href=(q.with_older_than(last.process.id.get())) { "Older →" } }
                }
            }
        }
        @if let Some(id) = found.looked_down_to {
            p.pager.muted #looked-through {
                @if rows.is_empty() { "No process matches" } @else { "These are all that match" }
                " among the newest " (count(WALK)) " processes looked at (down to #" (id.get())
                "); older ones were not looked at, so that a filter costs the same on any table. "
                a #look-further href=(q.with_older_than(id.get())) { "Look further back →" }
            }
        }
    };
    Ok(Html(
        page("Processes", Some(Section::Processes), Some(&session), body).into_string(),
    ))
}

fn took(r: &ProcessRow) -> String {
    match r.process.completed_at {
        Some(done) => layout::seconds(Some(
            (done - r.process.created_at).num_milliseconds() as f64 / 1000.0,
        )),
        None => "—".into(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorsQuery {
    offset: Option<i64>,
}

const ERRORS_PAGE: i64 = 50;

pub(crate) async fn show(
    State(state): State<Console>,
    session: Session,
    Path((org, id)): Path<(String, String)>,
    Query(q): Query<ErrorsQuery>,
) -> ConsoleResult<Html<String>> {
    let not_found =
        || ConsoleError::NotFound(format!("There is no process {id} of organization {org}"));
    let (Ok(org_id), Ok(pid)) = (org.parse::<i64>(), id.parse::<i64>()) else {
        return Err(not_found());
    };
    let (org_id, pid) = (OrgId(org_id), ProcessId(pid));
    let client = state.pool.get().await?;
    let row = operations::process(&client, org_id, pid)
        .await?
        .ok_or_else(not_found)?;
    let offset = q.offset.unwrap_or(0).max(0);
    let (total_errors, errors) =
        processes::rejections(&client, org_id, pid, ERRORS_PAGE, offset).await?;
    let p = &row.process;
    let open = !p.status.is_final();
    let waits = if open {
        waits::of(&client, org_id, pid).await?
    } else {
        Waits::default()
    };
    let body = html! {
        h1 { "Process " (p.id.get()) " " (layout::status(p.status.as_str())) }
        @if open { (waiting(org_id, &waits)) }
        (facts(org_id, &row))
        @if open { (fail_form(&session, org_id, pid)) }
        (rejections(&errors, total_errors, offset))
    };
    Ok(Html(
        page(
            &format!("Process {}", p.id.get()),
            Some(Section::Processes),
            Some(&session),
            body,
        )
        .into_string(),
    ))
}

/// What the process is, what it did, and when.
fn facts(org_id: OrgId, row: &ProcessRow) -> Markup {
    let p = &row.process;
    let c = &p.counts;
    html! {
        dl.facts #facts {
            dt { "organization" } dd { a href=(format!("/console/organizations/{}", org_id.get())) { (org_id.get()) } }
            dt { "kind" } dd { (p.kind.name()) }
            dt { "object type" } dd { (p.object_type) }
            dt { "records" } dd {
                (count(i64::from(p.total))) " sent · "
                (count(i64::from(c.processed))) " processed · "
                (count(i64::from(c.created))) " created · "
                (count(i64::from(c.updated))) " updated · "
                (count(i64::from(c.deleted))) " deleted · "
                (count(i64::from(c.failed))) " failed"
            }
            dt { "links" } dd {
                (c.links.created) " made · " (c.links.removed) " removed · " (c.links.failed) " refused"
            }
            dt { "deliveries" } dd { (row.deliveries) }
            dt { "accepted (202)" } dd { (layout::time(p.created_at)) }
            dt { "first picked up" } dd { (layout::maybe_time(p.started_at)) }
            dt { "last delivered" } dd { (layout::maybe_time(row.last_delivery_at)) }
            dt { "ended" } dd { (layout::maybe_time(p.completed_at)) " " span.muted { (took(row)) } }
            @if let Some(e) = &p.error { dt { "why it failed" } dd { pre { (e) } } }
            @if let Some(who) = &row.failed_by { dt { "failed by" } dd #failed-by { (who) } }
            @if let Some(e) = &row.last_error { dt { "last transient error" } dd { pre { (e) } } }
        }
    }
}

/// A page of the process's rejected records and refused links.
fn rejections(errors: &[StoredRejection], total_errors: i64, offset: i64) -> Markup {
    html! {
        h2 { "Rejected records and refused links (" (count(total_errors)) ")" }
        @if errors.is_empty() {
            p.muted { "None." }
        } @else {
            table #errors {
                thead { tr { th.num { "record" } th { "identifiers" } th { "code" } th { "message" } } }
                tbody {
                    @for e in errors {
                        tr {
                            td.num { (e.index) }
                            td { code { (e.identifiers.to_string()) } }
                            td { (e.code) }
                            td { (e.message) }
                        }
                    }
                }
            }
            p.pager {
                @if offset > 0 {
                    a href=(format!("?offset={}", (offset - ERRORS_PAGE).max(0))) { "← Previous" } " "
                }
                @if offset + ERRORS_PAGE < total_errors {
                    a href=(format!("?offset={}", offset + ERRORS_PAGE)) { "Next →" }
                }
            }
        }
    }
}

/// What an open process waits for in acceptance order, and what waits for
/// it (see `objectsync_store::waits`).
fn waiting(org: OrgId, w: &Waits) -> Markup {
    html! {
        @if let Some((blocker, since)) = w.waiting_for {
            p.notice #waiting-for {
                "Waiting for process "
                a href=(format!("/console/processes/{}/{}", org.get(), blocker.get())) { "#" (blocker.get()) }
                ", accepted earlier on the same records and not applied yet, since " (layout::time(since)) ". "
                "If that batch will never be applied (its message was lost), fail it there."
            }
        }
        @if w.waited_on_by > 0 {
            p.notice.error #waited-on {
                (count(w.waited_on_by)) " later batch(es) of this organization wait for this one. "
                "If its message is lost, fail it below so that they go on."
            }
        }
    }
}

/// The form that fails an open process by hand.
fn fail_form(session: &Session, org: OrgId, pid: ProcessId) -> Markup {
    html! {
        form.fail method="post" action=(format!("/console/processes/{}/{}/fail", org.get(), pid.get()))
            data-confirm="Fail this process? It will never be applied, even if its batch turns up later; its client is told the reason." {
            (csrf(session))
            label { "reason (its client reads it)"
                input name="reason" required maxlength=(MAX_REASON_CHARS) size="60"
                    placeholder="its message was purged from the queue"; }
            button.danger #fail type="submit" { "Fail this process" }
        }
    }
}

/// The fail form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct FailForm {
    /// Missing is refused like wrong (403).
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Fails an open process for the logged-in operator, then shows it.
pub(crate) async fn fail(
    State(state): State<Console>,
    session: Session,
    Path((org, id)): Path<(String, String)>,
    Form(f): Form<FailForm>,
) -> ConsoleResult<Redirect> {
    session.check(&f.csrf)?;
    let not_found =
        || ConsoleError::NotFound(format!("There is no process {id} of organization {org}"));
    let (Ok(org_id), Ok(pid)) = (org.parse::<i64>(), id.parse::<i64>()) else {
        return Err(not_found());
    };
    let (org_id, pid) = (OrgId(org_id), ProcessId(pid));
    let failed = state
        .actions
        .fail_process(org_id, pid, &session.who, &f.reason)
        .await;
    match failed {
        // Another operator (or the batch) ended it first: the page says how.
        Ok(()) | Err(ConsoleError::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(Redirect::to(&format!(
        "/console/processes/{}/{}",
        org_id.get(),
        pid.get()
    )))
}
