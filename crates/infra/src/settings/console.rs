//! The operators' console's settings (`OBJECTSYNC__CONSOLE__…`).

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConsoleSettings {
    /// Marks the session cookie `Secure` on every answer, so that a browser
    /// sends it over HTTPS only. Set it wherever the console is reached
    /// over HTTPS (a TLS reverse proxy in front of ingest). Off by default
    /// because a browser keeps a `Secure` cookie from a plain-HTTP answer
    /// only for `localhost`: with it on, a console reached over plain HTTP
    /// at any other address could not log in. Off, the cookie is still
    /// `Secure` when the request says it came over HTTPS
    /// (`X-Forwarded-Proto: https`, as reverse proxies send).
    #[serde(default)]
    pub secure_cookie: bool,
}
