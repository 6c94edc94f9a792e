//! Organizations: their activity, API keys (create, revoke), webhooks
//! (see `webhooks`) and object types. A revoked key is refused from the
//! next request on, on every ingest replica: each request looks its key up
//! in the database.

use std::collections::HashMap;

use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Duration;
use maud::{Markup, html};
use objectsync_model::{KeyId, ObjectType, OrgId};
use objectsync_store::organizations::KeyInfo;
use objectsync_store::{Scope, operations, organizations, records};

use super::ended::this_minute;
use super::layout::{self, Section, count, csrf, page};
use super::session::Session;
use super::{ConsoleError, ConsoleResult, CsrfOnly};
use crate::Console;

const PAGE: i64 = 200;

pub(crate) async fn list(
    State(state): State<Console>,
    session: Session,
) -> ConsoleResult<Html<String>> {
    let client = state.pool.get().await?;
    let orgs = organizations::list(&client, OrgId(0), PAGE).await?;
    let open: HashMap<OrgId, i64> = operations::open_by_org(&client)
        .await?
        .into_iter()
        .collect();
    let day = state
        .ended
        .since(
            &client,
            &client,
            this_minute() - Duration::minutes(24 * 60 - 1),
        )
        .await?;
    let body = html! {
        h1 { "Organizations" }
        table #organizations {
            thead { tr {
                th.num { "id" } th { "name" } th { "custom objects" } th.num { "open processes" }
                th.num { "processes ended, 24 h" } th.num { "failed, 24 h" } th.num { "records applied, 24 h" } th { "created" }
            } }
            tbody {
                @for o in &orgs {
                    @let a = day.orgs.get(&o.id).copied().unwrap_or_default();
                    tr {
                        td.num { (o.id.get()) }
                        td { a href=(format!("/console/organizations/{}", o.id.get())) { (o.name) } }
                        td { @if o.custom_objects_enabled { "on" } @else { span.muted { "off" } } }
                        td.num { (count(open.get(&o.id).copied().unwrap_or_default())) }
                        td.num { (count(a.processes)) }
                        td.num { (count(a.failed)) }
                        td.num { (count(a.records)) }
                        td { (layout::time(o.created_at)) }
                    }
                }
            }
        }
        @if orgs.len() as i64 == PAGE { p.muted { "The first " (PAGE) " organizations." } }
    };
    Ok(Html(
        page(
            "Organizations",
            Some(Section::Organizations),
            Some(&session),
            body,
        )
        .into_string(),
    ))
}

pub(crate) fn org_id(raw: &str) -> ConsoleResult<OrgId> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(OrgId)
        .ok_or_else(|| ConsoleError::NotFound(format!("There is no organization {raw}")))
}

pub(crate) async fn render(
    state: &Console,
    session: &Session,
    org: OrgId,
    notice: Option<Markup>,
) -> ConsoleResult<Html<String>> {
    let client = state.pool.get().await?;
    let info = organizations::get(&client, org)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("There is no organization {}", org.get())))?;
    let keys = organizations::keys(&client, org).await?;
    let types = objectsync_store::object_types::list(&client, org).await?;
    let mut stored = Vec::with_capacity(types.len());
    for t in &types {
        stored.push(records::count(&client, Scope::of(org, t.id)).await?);
    }
    let hooks = super::webhooks::section(&client, session, org).await?;
    let body = html! {
        h1 { (info.name) " " span.muted { "#" (org.get()) } }
        @if let Some(n) = notice { (n) }
        dl.facts {
            dt { "custom objects" } dd { @if info.custom_objects_enabled { "on" } @else { "off" } }
            dt { "created" } dd { (layout::time(info.created_at)) }
            dt { "processes" } dd { a href=(format!("/console/processes?org={}", org.get())) { "its processes" } }
        }
        (keys_section(session, org, &keys))
        (hooks)
        (types_section(&types, &stored))
    };
    Ok(Html(
        page(
            &info.name,
            Some(Section::Organizations),
            Some(session),
            body,
        )
        .into_string(),
    ))
}

/// The organization's API keys, each with when it was last used (to the
/// minute) and its revoke button, and the button that creates one.
fn keys_section(session: &Session, org: OrgId, keys: &[KeyInfo]) -> Markup {
    html! {
        h2 { "API keys" }
        table #keys {
            thead { tr { th { "key" } th { "created" } th { "last used" } th { "state" } th {} } }
            tbody {
                @for k in keys {
                    @let id = hex::encode(&k.key_hash);
                    tr data-key=(id) {
                        td { code { "osk_…" (k.hint.as_deref().unwrap_or("????")) } }
                        td { (layout::time(k.created_at)) }
                        td.last-used { @match k.last_used_at {
                            Some(t) => { (layout::time(t)) }
                            None => { "—" }
                        } }
                        td { @match k.revoked_at {
                            Some(t) => { span.badge.failed { "revoked" } " " (layout::time(t)) }
                            None => { span.badge.completed { "live" } }
                        } }
                        td {
                            @if k.revoked_at.is_none() {
                                form.inline method="post" action=(format!("/console/organizations/{}/keys/{id}/revoke", org.get()))
                                    data-confirm="Revoke this key? Requests with it are refused from now on." {
                                    (csrf(session))
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action=(format!("/console/organizations/{}/keys", org.get())) {
            (csrf(session))
            p { button type="submit" { "Create a key" } }
        }
    }
}

/// Each object type with its attributes and associations, and how many
/// records it has (`stored`, in the same order).
fn types_section(types: &[ObjectType], stored: &[i64]) -> Markup {
    html! {
        h2 { "Object types" }
        @if types.is_empty() { p.muted { "None defined." } }
        @for (t, n) in types.iter().zip(stored) {
            section.card.object-type {
                h2 { (t.name.as_str()) " " span.muted { "— " (t.label) " · " (count(*n)) " records" } }
                table {
                    thead { tr { th { "attribute" } th { "label" } th { "type" } th { "options" } } }
                    tbody {
                        @for a in &t.attributes {
                            tr {
                                td { code { (a.key.as_str()) } }
                                td { (a.label) }
                                td { (a.kind.as_str()) }
                                td { @for o in &a.options { (o.key) " " } }
                            }
                        }
                    }
                }
                p { "associated with: "
                    @if t.associations.is_empty() { span.muted { "nothing" } }
                    @for a in &t.associations { code { (a.as_str()) } " " }
                }
            }
        }
    }
}

pub(crate) async fn show(
    State(state): State<Console>,
    session: Session,
    Path(raw): Path<String>,
) -> ConsoleResult<Html<String>> {
    render(&state, &session, org_id(&raw)?, None).await
}

/// Creates a key and shows it, this once.
pub(crate) async fn create_key(
    State(state): State<Console>,
    session: Session,
    Path(raw): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> ConsoleResult<Html<String>> {
    session.check(&f.csrf)?;
    let org = org_id(&raw)?;
    let api_key = state.actions.create_key(org).await?;
    tracing::info!(
        who = session.who,
        org_id = org.get(),
        "console: API key created"
    );
    let notice = html! {
        div.notice #new-key {
            "New key — copy it now, it is not shown again: "
            span.secret { (api_key) }
        }
    };
    render(&state, &session, org, Some(notice)).await
}

pub(crate) async fn revoke_key(
    State(state): State<Console>,
    session: Session,
    Path((raw, key)): Path<(String, String)>,
    Form(f): Form<CsrfOnly>,
) -> ConsoleResult<Response> {
    session.check(&f.csrf)?;
    let org = org_id(&raw)?;
    let key: KeyId = key
        .parse()
        .map_err(|_| ConsoleError::NotFound("No such key".into()))?;
    let client = state.pool.get().await?;
    if organizations::revoke_key(&client, org, key.hash()).await? {
        tracing::warn!(
            who = session.who,
            org_id = org.get(),
            "console: API key revoked"
        );
    }
    Ok(Redirect::to(&format!("/console/organizations/{}", org.get())).into_response())
}
