//! Console sessions: a login form that takes the admin token once and sets
//! a signed cookie, so the token never travels in a URL and is not kept by
//! the browser.
//!
//! The cookie is `{name}.{expiry}.{signature}`: the operator's name (hex),
//! a Unix expiry, and an HMAC-SHA256 of both under a key derived from the
//! admin token. Nothing is stored server-side, so every ingest replica
//! accepts it, and changing the admin token ends every session. It is
//! `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
//! makes the browser send it) and `Secure` behind a proxy that says the
//! request came over HTTPS.
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
use sha2::{Digest, Sha256};

use crate::state::AppState;

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
}

/// The cookie value of a new session of `who`, valid until `expires`.
pub(crate) fn issue(token: &str, who: &str, expires: i64) -> String {
    let body = format!("{}.{expires}", hex::encode(who.as_bytes()));
    format!("{body}.{}", hex::encode(sign(token, body.as_bytes())))
}

/// The session a cookie value holds, if it is genuine and not expired.
pub(crate) fn open(token: &str, value: &str, now: i64) -> Option<Session> {
    let (body, signature) = value.rsplit_once('.')?;
    let signature = hex::decode(signature).ok()?;
    if !verify(token, body.as_bytes(), &signature) {
        return None;
    }
    let (who, expires) = body.split_once('.')?;
    if expires.parse::<i64>().ok()? <= now {
        return None;
    }
    let who = String::from_utf8(hex::decode(who).ok()?).ok()?;
    let csrf = hex::encode(sign(token, format!("csrf\0{value}").as_bytes()));
    Some(Session { who, csrf })
}

impl Session {
    /// Whether `given` is this session's CSRF token (in constant time).
    pub(crate) fn csrf_ok(&self, given: &str) -> bool {
        crate::auth::secrets_match(given, &self.csrf)
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` of a session (or, with `None`, of its end).
pub(crate) fn set_cookie(headers: &HeaderMap, value: Option<&str>) -> String {
    let secure = headers
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

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = state.admin_token.as_deref() else {
            return Err(super::disabled());
        };
        if let Some(session) = cookie(&parts.headers, COOKIE).and_then(|v| open(token, v, now())) {
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
        let value = issue("secret", "Ada Lovelace", 1_000);
        let s = open("secret", &value, 999).expect("opens");
        assert_eq!(s.who, "Ada Lovelace");
        assert!(open("secret", &value, 1_000).is_none(), "expired");
        assert!(open("other", &value, 10).is_none(), "another token");
        let forged = value.replacen("41", "42", 1);
        assert!(open("secret", &forged, 10).is_none(), "name changed");
        assert!(open("secret", "garbage", 10).is_none());
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let a = open("secret", &issue("secret", "a", 100), 0).unwrap();
        let b = open("secret", &issue("secret", "b", 100), 0).unwrap();
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
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert!(set_cookie(&h, Some("v")).contains("HttpOnly; SameSite=Strict"));
    }
}
