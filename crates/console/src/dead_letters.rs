//! Dead letters: every batch the broker gave up on, kept in PostgreSQL by
//! the worker's dead-letter tracker with its body, reason and deliveries.
//! An operator replays one or discards it; either is recorded with who and
//! when, once.
//!
//! A replay is a new batch with the same body, accepted now: it gets a new
//! process (and `processId`), so in acceptance order it comes after every
//! batch accepted before the replay — its values land on top of newer ones,
//! exactly as if the producer had sent it again now. The dead letter's own
//! process stays `failed` (it applied nothing) and the dead letter names the
//! process that replaced it.

use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use objectsync_store::dead_letters::{self, DeadLetterSummary, Filter, Resolution};
use serde::Deserialize;

use super::layout::{self, Section, count, csrf, page};
use super::session::Session;
use super::{ConsoleError, ConsoleResult, CsrfOnly};
use crate::Console;
use crate::{Replay, ReplayError};

const PAGE: i64 = 50;
/// How much of a body the page shows.
const BODY_PREVIEW: usize = 4096;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    /// Any value: resolved ones too.
    all: Option<String>,
    older_than: Option<i64>,
}

fn resolution(d: &DeadLetterSummary) -> Markup {
    match d.resolution {
        None => html! { span.badge.failed { "to look at" } },
        Some(Resolution::Replayed) => html! {
            span.badge.replayed { "replayed" } " as "
            @if let (Some(org), Some(p)) = (d.org_id, d.replayed_as) {
                a href=(format!("/console/processes/{}/{}", org.get(), p.get())) { "#" (p.get()) }
            }
        },
        Some(Resolution::Discarded) => html! { span.badge { "discarded" } },
    }
}

fn who_when(d: &DeadLetterSummary) -> Markup {
    html! {
        @if let Some(who) = &d.resolved_by {
            (who) " " (layout::maybe_time(d.resolved_at))
        }
    }
}

pub(crate) async fn list(
    State(state): State<Console>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> ConsoleResult<Html<String>> {
    let all = q.all.is_some();
    let filter = if all { Filter::All } else { Filter::Unresolved };
    let client = state.pool.get().await?;
    let rows = dead_letters::list(&client, filter, q.older_than, PAGE).await?;
    let body = html! {
        h1 { "Dead letters" }
        p {
            @if all {
                "All dead letters. " a href="/console/dead-letters" { "Only those to look at" }
            } @else {
                "Those not replayed or discarded yet. " a href="/console/dead-letters?all=1" { "All" }
            }
        }
        @if rows.is_empty() {
            p.muted { "None." }
        } @else {
            table #dead-letters {
                thead { tr {
                    th.num { "#" } th { "process" } th { "type" } th { "reason" } th.num { "deliveries" }
                    th { "dead since" } th { "state" } th { "by" }
                } }
                tbody {
                    @for d in &rows {
                        tr data-dead-letter=(d.id) {
                            td.num { a href=(format!("/console/dead-letters/{}", d.id)) { (d.id) } }
                            td { (process_link(d)) }
                            td { (d.object_type.as_deref().unwrap_or("—")) }
                            td { (d.reason) }
                            td.num { (d.deliveries) }
                            td { (layout::time(d.dead_at)) }
                            td { (resolution(d)) }
                            td { (who_when(d)) }
                        }
                    }
                }
            }
            @if rows.len() as i64 == PAGE {
                @if let Some(last) = rows.last() {
                    p.pager { a href=(format!("/console/dead-letters?older_than={}{}", last.id, if all { "&all=1" } else { "" })) { "Older →" } }
                }
            }
        }
    };
    Ok(Html(
        page(
            "Dead letters",
            Some(Section::DeadLetters),
            Some(&session),
            body,
        )
        .into_string(),
    ))
}

fn process_link(d: &DeadLetterSummary) -> Markup {
    match (d.org_id, d.process_id) {
        (Some(org), Some(p)) => html! {
            a href=(format!("/console/processes/{}/{}", org.get(), p.get())) { "#" (p.get()) }
            span.muted { " org " (org.get()) }
        },
        _ => html! { span.muted { "names no process" } },
    }
}

async fn render(
    state: &Console,
    session: &Session,
    id: i64,
    notice: Option<Markup>,
) -> ConsoleResult<Html<String>> {
    let client = state.pool.get().await?;
    let d = dead_letters::get(&client, id)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("There is no dead letter {id}")))?;
    let s = &d.summary;
    let preview = String::from_utf8_lossy(&d.body[..d.body.len().min(BODY_PREVIEW)]).into_owned();
    let replayable =
        s.resolution.is_none() && s.org_id.is_some() && s.object_type.is_some() && s.kind.is_some();
    let body = html! {
        h1 { "Dead letter " (s.id) " " (resolution(s)) }
        @if let Some(n) = notice { (n) }
        dl.facts #facts {
            dt { "process" } dd { (process_link(s)) }
            dt { "kind" } dd { (s.kind.map_or("—", |k| k.name())) }
            dt { "object type" } dd { (s.object_type.as_deref().unwrap_or("—")) }
            dt { "reason" } dd { pre { (s.reason) } }
            dt { "deliveries" } dd { (s.deliveries) }
            dt { "dead since" } dd { (layout::time(s.dead_at)) }
            @if s.resolution.is_some() { dt { "resolved by" } dd { (who_when(s)) } }
            dt { "body" } dd { (count(i64::from(s.body_bytes))) " bytes" }
        }
        @if s.resolution.is_none() {
            p {
                @if replayable {
                    form.inline method="post" action=(format!("/console/dead-letters/{}/replay", s.id))
                        data-confirm="Replay this batch? It is accepted again now, as a new process, after every batch accepted so far." {
                        (csrf(session))
                        button.primary #replay type="submit" { "Replay" }
                    }
                    " "
                }
                form.inline method="post" action=(format!("/console/dead-letters/{}/discard", s.id))
                    data-confirm="Discard this batch for good?" {
                    (csrf(session))
                    button.danger #discard type="submit" { "Discard" }
                }
            }
            @if !replayable { p.muted { "It names no organization, type or kind, so it cannot be replayed." } }
        }
        h2 { "Body" @if d.body.len() > BODY_PREVIEW { " (first " (BODY_PREVIEW) " bytes)" } }
        pre.card { (preview) }
        @if let Some(h) = &d.headers {
            h2 { "Headers" }
            pre.card { (serde_json::to_string_pretty(h).unwrap_or_default()) }
        }
    };
    Ok(Html(
        page(
            &format!("Dead letter {id}"),
            Some(Section::DeadLetters),
            Some(session),
            body,
        )
        .into_string(),
    ))
}

pub(crate) async fn show(
    State(state): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> ConsoleResult<Html<String>> {
    let id = id
        .parse()
        .map_err(|_| ConsoleError::NotFound(format!("There is no dead letter {id}")))?;
    render(&state, &session, id, None).await
}

pub(crate) async fn replay(
    State(state): State<Console>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<CsrfOnly>,
) -> ConsoleResult<Response> {
    session.check(&f.csrf)?;
    let d = {
        let client = state.pool.get().await?;
        dead_letters::get(&client, id)
            .await?
            .ok_or_else(|| ConsoleError::NotFound(format!("There is no dead letter {id}")))?
    };
    let s = &d.summary;
    let (Some(org), Some(object_type), Some(kind)) = (s.org_id, s.object_type.as_deref(), s.kind)
    else {
        return Err(ConsoleError::BadRequest(
            "This dead letter names no organization, type or kind: it can only be discarded".into(),
        ));
    };
    let submitted = state
        .actions
        .replay(Replay {
            dead_letter: id,
            org,
            object_type,
            kind,
            body: &d.body,
            who: &session.who,
        })
        .await;
    match submitted {
        Ok(process) => {
            tracing::warn!(
                who = session.who,
                dead_letter = id,
                process_id = process.get(),
                "console: dead letter replayed"
            );
            Ok(Redirect::to(&format!("/console/dead-letters/{id}")).into_response())
        }
        Err(ReplayError::Refused(e)) => {
            let notice = html! {
                p.notice.error { "Not replayed: the batch was refused as it stands (" (e) "). Discard it, and have the producer send a corrected one." }
            };
            Ok(render(&state, &session, id, Some(notice))
                .await?
                .into_response())
        }
        Err(ReplayError::AlreadyResolved) => {
            Ok(Redirect::to(&format!("/console/dead-letters/{id}")).into_response())
        }
        Err(e) => {
            let notice =
                html! { p.notice.error { "Not replayed: " (e.to_string()) ". Try again." } };
            Ok(render(&state, &session, id, Some(notice))
                .await?
                .into_response())
        }
    }
}

pub(crate) async fn discard(
    State(state): State<Console>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<CsrfOnly>,
) -> ConsoleResult<Response> {
    session.check(&f.csrf)?;
    let client = state.pool.get().await?;
    if dead_letters::resolve(&client, id, Resolution::Discarded, &session.who, None).await? {
        tracing::warn!(
            who = session.who,
            dead_letter = id,
            "console: dead letter discarded"
        );
    }
    Ok(Redirect::to(&format!("/console/dead-letters/{id}")).into_response())
}
