//! Console sessions: a login form that takes the admin token once and sets
//! a signed cookie, so the token never travels in a URL and is not kept by
//! the browser.
//!
//! The cookie is `{name}.{expiry}.{id}.{signature}`: the operator's name
//! (hex), a Unix expiry, a random session id (hex), and an HMAC-SHA256 of
//! them under a key derived from the admin token, so changing the admin
//! token ends every session. The session is also a row of
//! `console_sessions` (named by the SHA-256 of its id), read on every
//! request: logging out ends the row, and with it the session on every
//! ingest replica, even for a copy of the cookie kept elsewhere. A forged
//! or garbled cookie is refused by its signature before any database read.
//! It is `HttpOnly` (no script reads it), `SameSite=Strict` (no other
//! site's page makes the browser send it) and `Secure` (sent over HTTPS
//! only) when `console.secure_cookie` is set, or behind a proxy that says
//! the request came over HTTPS.
//!
//! Every POST carries a CSRF token, the HMAC of the cookie under the same
//! key, checked in constant time; and a POST whose `Origin` names another
//! host is refused before that.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use objectsync_store::console_sessions;
use sha2::{Digest, Sha256};

use crate::Console;

pub(crate) const COOKIE: &str = "objectsync_console";
/// How long a login lasts.
pub(crate) const LIFETIME_SECS: i64 = 8 * 3600;

type HmacSha256 = Hmac<Sha256>;

/// The signing key of the sessions of one admin token.
fn key(token: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"objectsync console session\0")
        .chain_update(token.as_bytes())
        .finalize()
        .into()
}

fn sign(token: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(&key(token)).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn verify(token: &str, message: &[u8], signature: &[u8]) -> bool {
    let mut mac = HmacSha256::new_from_slice(&key(token)).expect("HMAC takes any key length");
    mac.update(message);
    mac.verify_slice(signature).is_ok()
}

/// A logged-in operator.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The name given at login, recorded with what they do.
    pub(crate) who: String,
    /// The token every form of this session must send back.
    pub(crate) csrf: String,
    /// Its row in `console_sessions`: the SHA-256 of the cookie's id.
    pub(crate) id: [u8; 32],
}

/// A new session: its cookie value and its row's name.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) cookie: String,
    pub(crate) id: [u8; 32],
}

/// A new session of `who`, valid until `expires`.
pub(crate) fn issue(token: &str, who: &str, expires: i64) -> Issued {
    let mut sid = [0u8; 32];
    // The OS random source failing is not something to recover from.
    getrandom::fill(&mut sid).expect("the OS random number generator failed");
    let body = format!(
        "{}.{expires}.{}",
        hex::encode(who.as_bytes()),
        hex::encode(sid)
    );
    Issued {
        cookie: format!("{body}.{}", hex::encode(sign(token, body.as_bytes()))),
        id: Sha256::digest(sid).into(),
    }
}

/// The session a cookie value holds, if it is genuine and not expired
/// (whether it was ended is the database's to say).
pub(crate) fn open(token: &str, value: &str, now: i64) -> Option<Session> {
    let (body, signature) = value.rsplit_once('.')?;
    let signature = hex::decode(signature).ok()?;
    if !verify(token, body.as_bytes(), &signature) {
        return None;
    }
    let mut parts = body.splitn(3, '.');
    let (who, expires, sid) = (parts.next()?, parts.next()?, parts.next()?);
    if expires.parse::<i64>().ok()? <= now {
        return None;
    }
    let sid = hex::decode(sid).ok().filter(|s| s.len() == 32)?;
    let who = String::from_utf8(hex::decode(who).ok()?).ok()?;
    let csrf = hex::encode(sign(token, format!("csrf\0{value}").as_bytes()));
    Some(Session {
        who,
        csrf,
        id: Sha256::digest(sid).into(),
    })
}

impl Session {
    /// Whether `given` is this session's CSRF token (in constant time).
    pub(crate) fn csrf_ok(&self, given: &str) -> bool {
        objectsync_infra::token_guard::secrets_match(given, &self.csrf)
    }
}

/// The value of cookie `name` in the request's `Cookie` headers, read by
/// the `cookie` crate (quoting, spacing and several headers as browsers
/// send them).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The `Set-Cookie` of a session (or, with `None`, of its end): `Secure`
/// when `always_secure` (`console.secure_cookie`) or when a proxy says the
/// request came over HTTPS.
pub(crate) fn set_cookie(always_secure: bool, headers: &HeaderMap, value: Option<&str>) -> String {
    let secure = always_secure
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let (value, age) = match value {
        Some(v) => (v, LIFETIME_SECS),
        None => ("", 0),
    };
    format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={age}{}",
        if secure { "; Secure" } else { "" }
    )
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl FromRequestParts<Console> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Console) -> Result<Self, Response> {
        let Some(token) = state.admin_token.as_deref() else {
            return Err(super::disabled());
        };
        if let Some(session) = cookie(&parts.headers, COOKIE).and_then(|v| open(token, &v, now()))
            && live(state, &session).await?
        {
            return Ok(session);
        }
        if parts.method == Method::GET {
            let back = parts
                .uri
                .path_and_query()
                .map_or("/console", |p| p.as_str());
            let next = url_escape(back);
            return Err(Redirect::to(&format!("/console/login?next={next}")).into_response());
        }
        Err((StatusCode::UNAUTHORIZED, "log in again").into_response())
    }
}

/// Whether `session` was neither ended nor forgotten: one primary-key read.
async fn live(state: &Console, session: &Session) -> Result<bool, Response> {
    let read = async {
        let client = state.pool.get().await?;
        Ok::<_, super::ConsoleError>(console_sessions::is_live(&client, &session.id).await?)
    };
    read.await.map_err(IntoResponse::into_response)
}

/// Percent-encodes everything but unreserved characters and `/`.
pub(crate) fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Refuses a POST whose `Origin` (or, without one, `Referer`) is another
/// host than the one it was sent to: a cross-site form, whatever its token.
pub(crate) async fn same_origin(req: Request, next: Next) -> Response {
    if req.method() == Method::POST {
        let headers = req.headers();
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let from = headers
            .get(header::ORIGIN)
            .or_else(|| headers.get(header::REFERER))
            .and_then(|v| v.to_str().ok());
        if let (Some(host), Some(from)) = (host, from) {
            let from_host = from
                .split_once("://")
                .map_or(from, |(_, rest)| rest)
                .split('/')
                .next()
                .unwrap_or_default();
            if !from_host.eq_ignore_ascii_case(host) {
                return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_opens_only_with_its_token_and_before_it_expires() {
        let issued = issue("secret", "Ada Lovelace", 1_000);
        let value = issued.cookie;
        let s = open("secret", &value, 999).expect("opens");
        assert_eq!(s.who, "Ada Lovelace");
        assert_eq!(s.id, issued.id, "names its row");
        assert_ne!(
            issue("secret", "Ada Lovelace", 1_000).id,
            s.id,
            "a new id each time"
        );
        assert!(open("secret", &value, 1_000).is_none(), "expired");
        assert!(open("other", &value, 10).is_none(), "another token");
        let forged = value.replacen("41", "42", 1);
        assert!(open("secret", &forged, 10).is_none(), "name changed");
        assert!(open("secret", "garbage", 10).is_none());
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let a = open("secret", &issue("secret", "a", 100).cookie, 0).unwrap();
        let b = open("secret", &issue("secret", "a", 100).cookie, 0).unwrap();
        assert!(a.csrf_ok(&a.csrf));
        assert!(!a.csrf_ok(&b.csrf));
        assert!(!a.csrf_ok(""));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "x=1; objectsync_console=abc; y=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert!(set_cookie(false, &h, Some("v")).contains("HttpOnly; SameSite=Strict"));
    }

    #[test]
    fn the_cookie_is_secure_when_configured_or_behind_https() {
        let plain = HeaderMap::new();
        assert!(!set_cookie(false, &plain, Some("v")).contains("Secure"));
        assert!(set_cookie(true, &plain, Some("v")).ends_with("; Secure"));
        assert!(set_cookie(true, &plain, None).ends_with("; Secure"));
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-proto", "HTTPS".parse().unwrap());
        assert!(set_cookie(false, &proxied, Some("v")).ends_with("; Secure"));
    }
}
