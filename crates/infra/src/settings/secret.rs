//! Settings that must not reach the logs whole.
//!
//! The admin token is a [`SecretString`]: `Debug` shows `[REDACTED]`. A
//! connection URL is a [`SecretUrl`]: `Debug` shows it with the password
//! replaced, because where a service connects is what an operator needs in
//! the log, and the password is what nobody else may read there. Either is
//! read with `expose_secret()`, so that every place that handles the secret
//! itself says so.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A URL whose password stays out of `Debug` output (and so out of every
/// log line that prints the settings).
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(SecretString);

impl SecretUrl {
    /// The URL itself, password included, for connecting (the same as
    /// [`ExposeSecret::expose_secret`], without importing the trait).
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with its password, if any, replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(self.expose_secret())
    }
}

impl ExposeSecret<str> for SecretUrl {
    fn expose_secret(&self) -> &str {
        SecretUrl::expose_secret(self)
    }
}

impl From<String> for SecretUrl {
    fn from(url: String) -> Self {
        Self(url.into())
    }
}

impl From<&str> for SecretUrl {
    fn from(url: &str) -> Self {
        Self(url.into())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

/// `scheme://user:password@host…` → `scheme://user:***@host…`; a URL
/// without a password is shown as it is.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_where_a_url_points_but_not_its_password() {
        let url = SecretUrl::from("postgres://app:pa:ss@db.internal:5432/prod?sslmode=require");
        assert_eq!(
            format!("{url:?}"),
            "\"postgres://app:***@db.internal:5432/prod?sslmode=require\""
        );
        assert_eq!(
            url.expose_secret(),
            "postgres://app:pa:ss@db.internal:5432/prod?sslmode=require"
        );
        let plain = SecretUrl::from("amqp://mq:5672/%2f");
        assert_eq!(format!("{plain:?}"), "\"amqp://mq:5672/%2f\"");
    }

    #[test]
    fn debug_of_a_secret_string_shows_nothing_of_it() {
        let token = SecretString::from("s3cret-s3cret-s3cret-s3cret-s3cret");
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
