//! An organization's webhooks on its page: register one (its secret shown
//! once), delete one, and the deliveries that failed for good, each with
//! its last error and a button to send it again.

use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use objectsync_model::OrgId;
use objectsync_store::{GenericClient, deliveries, webhooks};
use serde::Deserialize;

use super::layout::{self, csrf};
use super::organizations::{org_id, render};
use super::session::Session;
use super::{ConsoleError, ConsoleResult, CsrfOnly};
use crate::Console;

/// Failed deliveries listed on the page.
const FAILED_SHOWN: i64 = 50;
/// Pending deliveries are counted up to this.
const PENDING_CAP: i64 = 10_000;

/// The webhooks section of `org`'s page.
pub(crate) async fn section(
    c: &impl GenericClient,
    session: &Session,
    org: OrgId,
) -> ConsoleResult<Markup> {
    let hooks = webhooks::list(c, org).await?;
    let mut pending = Vec::with_capacity(hooks.len());
    for h in &hooks {
        pending.push(deliveries::pending(c, h.id, PENDING_CAP).await?);
    }
    let failed = deliveries::failed(c, org, FAILED_SHOWN).await?;
    let base = format!("/console/organizations/{}", org.get());
    Ok(html! {
        h2 { "Webhooks" }
        @if hooks.is_empty() { p.muted { "None registered." } }
        @else {
            table #webhooks {
                thead { tr { th.num { "id" } th { "URL" } th.num { "pending" } th { "registered" } th {} } }
                tbody {
                    @for (h, n) in hooks.iter().zip(&pending) {
                        tr data-webhook=(h.id) {
                            td.num { (h.id) }
                            td { code { (h.url) } }
                            td.num { (layout::count(*n)) @if *n >= PENDING_CAP { "+" } }
                            td { (layout::time(h.created_at)) @if let Some(who) = &h.created_by { " by " (who) } }
                            td {
                                form.inline method="post" action=(format!("{base}/webhooks/{}/delete", h.id))
                                    data-confirm="Delete this webhook? Deliveries not made yet are dropped." {
                                    (csrf(session))
                                    button.danger type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form #register-webhook method="post" action=(format!("{base}/webhooks")) {
            (csrf(session))
            label { "URL the organization's completion events are POSTed to"
                input name="url" type="url" required maxlength="2048" placeholder="https://example.com/hooks/objectsync"; }
            p { button type="submit" { "Register a webhook" } }
        }
        h2 { "Failed deliveries" }
        @if failed.is_empty() { p.muted { "None." } }
        @else {
            table #failed-deliveries {
                thead { tr {
                    th.num { "delivery" } th { "webhook" } th.num { "process" } th.num { "attempts" }
                    th { "last error" } th { "failed" } th {}
                } }
                tbody {
                    @for d in &failed {
                        tr data-delivery=(d.id) {
                            td.num { (d.id) }
                            td { code { (d.url) } }
                            td.num { a href=(format!("/console/processes/{}/{}", org.get(), d.process_id.get())) { "#" (d.process_id.get()) } }
                            td.num { (d.attempts) }
                            td { (d.last_error.as_deref().unwrap_or("")) }
                            td { (layout::time(d.failed_at)) }
                            td {
                                form.inline method="post" action=(format!("{base}/deliveries/{}/resend", d.id)) {
                                    (csrf(session))
                                    button type="submit" { "Resend" }
                                }
                            }
                        }
                    }
                }
            }
            @if failed.len() as i64 == FAILED_SHOWN { p.muted { "The newest " (FAILED_SHOWN) "." } }
        }
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewWebhook {
    #[serde(default)]
    csrf: String,
    url: String,
}

/// Registers a webhook and shows its secret, this once.
pub(crate) async fn create(
    State(state): State<Console>,
    session: Session,
    Path(raw): Path<String>,
    Form(f): Form<NewWebhook>,
) -> ConsoleResult<Html<String>> {
    session.check(&f.csrf)?;
    let org = org_id(&raw)?;
    let url = f.url.trim();
    let (id, secret) = state.actions.create_webhook(org, url, &session.who).await?;
    tracing::info!(
        who = session.who,
        org_id = org.get(),
        webhook_id = id,
        "console: webhook registered"
    );
    let notice = html! {
        div.notice #new-webhook-secret {
            "Webhook #" (id) " registered. Its signing secret — copy it now, it is not shown again: "
            span.secret { (secret) }
        }
    };
    render(&state, &session, org, Some(notice)).await
}

/// Deletes a webhook with its deliveries.
pub(crate) async fn delete(
    State(state): State<Console>,
    session: Session,
    Path((raw, id)): Path<(String, i64)>,
    Form(f): Form<CsrfOnly>,
) -> ConsoleResult<Response> {
    session.check(&f.csrf)?;
    let org = org_id(&raw)?;
    let client = state.pool.get().await?;
    if !webhooks::delete(&client, org, id).await? {
        return Err(ConsoleError::NotFound(format!(
            "No webhook {id} of this organization"
        )));
    }
    tracing::warn!(
        who = session.who,
        org_id = org.get(),
        webhook_id = id,
        "console: webhook deleted"
    );
    Ok(Redirect::to(&format!("/console/organizations/{}", org.get())).into_response())
}

/// Sends a failed delivery again, with a fresh set of retries.
pub(crate) async fn resend(
    State(state): State<Console>,
    session: Session,
    Path((raw, id)): Path<(String, i64)>,
    Form(f): Form<CsrfOnly>,
) -> ConsoleResult<Response> {
    session.check(&f.csrf)?;
    let org = org_id(&raw)?;
    let client = state.pool.get().await?;
    if !deliveries::resend(&client, org, id).await? {
        return Err(ConsoleError::NotFound(format!(
            "No failed delivery {id} of this organization (sent again already?)"
        )));
    }
    tracing::info!(
        who = session.who,
        org_id = org.get(),
        delivery_id = id,
        "console: webhook delivery sent again"
    );
    Ok(Redirect::to(&format!("/console/organizations/{}", org.get())).into_response())
}
