//! The operators' console at `/console`: server-rendered pages over the
//! process tables, the dead letters, the live workers and the
//! organizations, with a little script to refresh the overview. Everything
//! it serves is in the binary. It is there only when an admin token is set,
//! and every page but the login form needs a session (see [`session`]).
//!
//! Every query a page runs reads an index range that does not grow with the
//! tables (see `objectsync_store::operations`), so pages stay fast with
//! millions of records and processes.

mod dead_letters;
mod ended;
mod layout;
mod organizations;
mod overview;
mod processes;
mod session;
mod state;
mod webhooks;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use maud::html;
use objectsync_store::{StoreError, console_sessions};
use serde::Deserialize;

use layout::page;
use objectsync_infra::token_guard::{ClientAddr, secrets_match, wait_text};
use session::Session;
pub use state::{Actions, Console, Pending, QueueDepth, Queues, Replay, ReplayError};

/// The console's routes, for ingest's router (whatever its state) to
/// merge: every page under `/console`.
pub fn router<S: Clone + Send + Sync + 'static>(console: Console) -> Router<S> {
    Router::new()
        .route("/console", get(overview::show))
        .route("/console/overview/live", get(overview::live))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/processes", get(processes::list))
        .route("/console/processes/{org_id}/{id}", get(processes::show))
        .route(
            "/console/processes/{org_id}/{id}/fail",
            post(processes::fail),
        )
        .route("/console/dead-letters", get(dead_letters::list))
        .route("/console/dead-letters/{id}", get(dead_letters::show))
        .route(
            "/console/dead-letters/{id}/replay",
            post(dead_letters::replay),
        )
        .route(
            "/console/dead-letters/{id}/discard",
            post(dead_letters::discard),
        )
        .route("/console/organizations", get(organizations::list))
        .route("/console/organizations/{org_id}", get(organizations::show))
        .route(
            "/console/organizations/{org_id}/keys",
            post(organizations::create_key),
        )
        .route(
            "/console/organizations/{org_id}/keys/{key}/revoke",
            post(organizations::revoke_key),
        )
        .route(
            "/console/organizations/{org_id}/webhooks",
            post(webhooks::create),
        )
        .route(
            "/console/organizations/{org_id}/webhooks/{id}/delete",
            post(webhooks::delete),
        )
        .route(
            "/console/organizations/{org_id}/deliveries/{id}/resend",
            post(webhooks::resend),
        )
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route_layer(middleware::from_fn(session::same_origin))
        .route_layer(middleware::from_fn(security_headers))
        .with_state(console)
}

/// Pages may not be framed (clickjacking), and load nothing from elsewhere.
async fn security_headers(req: axum::extract::Request, next: middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        layout::CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        layout::JS,
    )
}

/// What a console request can fail with, as a page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "this form has expired or did not come from the console; reload the page and try again"
    )]
    Csrf,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::Store(e) if e.kind() == objectsync_store::ErrorKind::Transient => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "console request failed");
        }
        let body = page(
            status.canonical_reason().unwrap_or("Error"),
            None,
            None,
            html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.notice.error { (self.to_string()) }
                p { a href="/console" { "Back to the console" } }
            },
        );
        (status, Html(body.into_string())).into_response()
    }
}

pub(crate) type ConsoleResult<T> = Result<T, ConsoleError>;

/// The console without an admin token: not there.
pub(crate) fn disabled() -> Response {
    (
        StatusCode::NOT_FOUND,
        "The console is disabled: set OBJECTSYNC__ADMIN__TOKEN",
    )
        .into_response()
}

/// A form's CSRF field, checked against the session.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    /// Missing is refused like wrong (403), not as a malformed form.
    #[serde(default)]
    pub(crate) csrf: String,
}

impl Session {
    pub(crate) fn check(&self, csrf: &str) -> ConsoleResult<()> {
        if self.csrf_ok(csrf) {
            Ok(())
        } else {
            Err(ConsoleError::Csrf)
        }
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// Only a path inside the console: never an open redirect.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") && !n.contains("\\") => n,
        _ => "/console",
    }
}

fn login_page(next: &str, error: Option<&str>) -> Html<String> {
    Html(
        page(
            "Log in",
            None,
            None,
            html! {
                form.login method="post" action="/console/login" {
                    h1 { "objectsync console" }
                    @if let Some(e) = error { p.notice.error { (e) } }
                    input type="hidden" name="next" value=(next);
                    label { "Your name (recorded with what you do)"
                        input name="who" required maxlength="64" autocomplete="username"; }
                    label { "Admin token"
                        input name="token" type="password" required autocomplete="current-password"; }
                    button.primary type="submit" { "Log in" }
                }
            },
        )
        .into_string(),
    )
}

async fn login_form(State(state): State<Console>, Query(q): Query<LoginQuery>) -> Response {
    if state.admin_token.is_none() {
        return disabled();
    }
    login_page(safe_next(q.next.as_deref()), None).into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    who: String,
    token: String,
    next: Option<String>,
}

async fn login(
    State(state): State<Console>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let Some(expected) = state.admin_token.as_deref() else {
        return disabled();
    };
    let next = safe_next(f.next.as_deref()).to_owned();
    let who: String = f
        .who
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    if who.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            login_page(&next, Some("Give your name.")),
        )
            .into_response();
    }
    if let Err(throttled) = state.token_guard.admit(client) {
        let message = wait_text(throttled);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, throttled.retry_after.to_string())],
            login_page(&next, Some(&format!("Refused: {message}."))),
        )
            .into_response();
    }
    if !secrets_match(&f.token, expected) {
        state
            .token_guard
            .wrong(client, &format!("console login as {who:?}"));
        return (
            StatusCode::UNAUTHORIZED,
            login_page(&next, Some("Wrong admin token.")),
        )
            .into_response();
    }
    state.token_guard.right(client);
    match start_session(&state, expected, &who).await {
        Ok(cookie) => {
            tracing::info!(who, client = %client, "console login");
            (
                [(
                    header::SET_COOKIE,
                    session::set_cookie(state.secure_cookie, &headers, Some(&cookie)),
                )],
                Redirect::to(&next),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// A new session of `who`, recorded: its cookie value.
async fn start_session(state: &Console, token: &str, who: &str) -> ConsoleResult<String> {
    let expires = session::now() + session::LIFETIME_SECS;
    let issued = session::issue(token, who, expires);
    let expires_at = chrono::DateTime::from_timestamp(expires, 0).unwrap_or_default();
    let client = state.pool.get().await?;
    console_sessions::start(&client, &issued.id, who, expires_at).await?;
    Ok(issued.cookie)
}

/// Ends the session in the database, so that no copy of its cookie opens
/// the console again on any replica, then clears the cookie.
async fn logout(
    State(state): State<Console>,
    session: Session,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> ConsoleResult<Response> {
    session.check(&f.csrf)?;
    let client = state.pool.get().await?;
    console_sessions::end(&client, &session.id).await?;
    tracing::info!(who = session.who, "console logout");
    Ok((
        [(
            header::SET_COOKIE,
            session::set_cookie(state.secure_cookie, &headers, None),
        )],
        Redirect::to("/console/login"),
    )
        .into_response())
}
