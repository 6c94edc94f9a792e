//! TLS to PostgreSQL with libpq's URL parameters, so that the URL a managed
//! PostgreSQL hands out works as it is: `sslmode` (`disable`, `prefer`,
//! `require`, `verify-ca`, `verify-full`), `sslrootcert` (a PEM file, or
//! `system` for the platform's roots), `sslcert` and `sslkey` (a client
//! certificate and its key, PEM).
//!
//! tokio-postgres knows `sslmode` only up to `require` and refuses the other
//! parameters, so they are taken out of the URL here, and the checks they
//! ask for are done by the rustls configuration of one connector that every
//! connection of the process uses (pools, migrations, administration).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::RootCertStore;

use crate::tls::{self as shared, Check, ClientFiles, TlsConfigError};

mod verify;

pub use verify::PgTls;

/// libpq's `sslmode`: how much of TLS a connection insists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS if the server offers it, plain otherwise (libpq's default); the
    /// certificate is not checked, unless `sslrootcert` names a file.
    Prefer,
    /// TLS or nothing; the certificate is not checked (the connection is
    /// encrypted, but a man in the middle goes unnoticed), unless
    /// `sslrootcert` names a file, as in libpq.
    Require,
    /// TLS, and the certificate must chain to a root of `sslrootcert`; the
    /// host name is not compared (for servers reached by an address their
    /// certificate does not name).
    VerifyCa,
    /// TLS, the certificate must chain to a root of `sslrootcert` and name
    /// the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, TlsSetupError> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => return Err(TlsSetupError::SslMode(other.to_owned())),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Why the TLS settings of a database URL cannot be used. Only parameter
/// values and file paths are shown, never the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("sslmode={0} is not one of disable, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error(
        "sslmode={0} checks the server's certificate against a root: set sslrootcert to a PEM \
         file of the root certificate(s), or to `system` for the platform's roots"
    )]
    NoRoots(&'static str),
    #[error("sslrootcert=system needs sslmode=verify-full (or no sslmode), not sslmode={0}")]
    SystemRootsNeedVerifyFull(&'static str),
    #[error("sslcert and sslkey go together: {0} is set without the other")]
    HalfClientCertificate(&'static str),
    /// A file that cannot be read or holds no certificate, or a rustls
    /// configuration that cannot be made.
    #[error(transparent)]
    Files(#[from] TlsConfigError),
}

/// The libpq TLS parameters of a URL, taken out of it.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    sslcert: Option<String>,
    sslkey: Option<String>,
}

/// `url` less its TLS parameters, and those parameters (percent-decoded).
/// A key=value connection string is returned whole: tokio-postgres reads
/// its `sslmode` (up to `require`) itself.
fn split_url(url: &str) -> (String, TlsParams) {
    let mut params = TlsParams::default();
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return (url.to_owned(), params);
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || Some(percent_decode_str(value).decode_utf8_lossy().into_owned());
        match key {
            "sslmode" => params.sslmode = value(),
            "sslrootcert" => params.sslrootcert = value(),
            "sslcert" => params.sslcert = value(),
            "sslkey" => params.sslkey = value(),
            _ => kept.push(pair),
        }
    }
    let url = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    (url, params)
}

/// Where the roots a certificate must chain to come from.
enum Roots {
    File(PathBuf),
    System,
}

/// A database URL made ready to connect with: tokio-postgres's
/// configuration and the TLS connector that does what the URL asks.
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: PgTls,
    pub sslmode: SslMode,
}

impl Target {
    /// Reads `url` (a `postgres://` URL, or a key=value string).
    pub fn parse(url: &str) -> Result<Self, super::DbError> {
        let (rest, params) = split_url(url);
        let mut config = tokio_postgres::Config::from_str(&rest).map_err(super::DbError::Url)?;
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            return Err(super::DbError::NoHost);
        }
        let roots = params.sslrootcert.as_deref().map(|r| match r {
            "system" => Roots::System,
            path => Roots::File(PathBuf::from(path)),
        });
        let sslmode = match (params.sslmode.as_deref(), &roots) {
            (Some(mode), _) => SslMode::parse(mode)?,
            // libpq: system roots mean a full check unless told otherwise.
            (None, Some(Roots::System)) => SslMode::VerifyFull,
            (None, _) => match config.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => SslMode::Disable,
                tokio_postgres::config::SslMode::Require => SslMode::Require,
                _ => SslMode::Prefer,
            },
        };
        config.ssl_mode(match sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let tls = rustls_config(sslmode, roots, &params)?;
        Ok(Self {
            config,
            tls: PgTls::new(tls),
            sslmode,
        })
    }
}

/// The rustls configuration for `sslmode` with these roots and client
/// certificate.
fn rustls_config(
    sslmode: SslMode,
    roots: Option<Roots>,
    params: &TlsParams,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let check = match (sslmode, &roots) {
        (
            SslMode::Disable | SslMode::Prefer | SslMode::Require | SslMode::VerifyCa,
            Some(Roots::System),
        ) => {
            return Err(TlsSetupError::SystemRootsNeedVerifyFull(sslmode.name()));
        }
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(TlsSetupError::NoRoots(sslmode.name()));
        }
        (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => Check::Nothing,
        // libpq: with a root file, `require` (and `prefer`) check the chain.
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, Some(_)) => Check::Chain,
        (SslMode::VerifyFull, Some(_)) => Check::Full,
    };
    let roots = match roots {
        None => RootCertStore::empty(),
        Some(Roots::File(path)) => shared::root_store("sslrootcert", &path)?,
        Some(Roots::System) => shared::system_roots("sslrootcert=system")?,
    };
    let client = match (&params.sslcert, &params.sslkey) {
        (Some(cert), Some(key)) => Some(shared::client_certificate(&ClientFiles {
            cert_param: "sslcert",
            cert: Path::new(cert),
            key_param: "sslkey",
            key: Path::new(key),
        })?),
        (Some(_), None) => return Err(TlsSetupError::HalfClientCertificate("sslcert")),
        (None, Some(_)) => return Err(TlsSetupError::HalfClientCertificate("sslkey")),
        (None, None) => None,
    };
    Ok(shared::client_config(check, Arc::new(roots), client)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_parameters_are_taken_out_and_the_rest_kept() {
        let (rest, params) = split_url(
            "postgres://u:p@db.example.com:5432/app?sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fssl%2Frds%20bundle.pem&application_name=x&sslcert=c.pem&sslkey=k.pem",
        );
        assert_eq!(
            rest,
            "postgres://u:p@db.example.com:5432/app?application_name=x"
        );
        assert_eq!(params.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(
            params.sslrootcert.as_deref(),
            Some("/etc/ssl/rds bundle.pem")
        );
        assert_eq!(params.sslcert.as_deref(), Some("c.pem"));
        assert_eq!(params.sslkey.as_deref(), Some("k.pem"));
        let (rest, params) = split_url("postgresql://db/app?sslmode=require");
        assert_eq!(rest, "postgresql://db/app");
        assert_eq!(params.sslmode.as_deref(), Some("require"));
        let kv = "host=db sslmode=require";
        assert_eq!(split_url(kv), (kv.to_owned(), TlsParams::default()));
    }

    fn mode(url: &str) -> Result<SslMode, String> {
        Target::parse(url)
            .map(|t| t.sslmode)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn modes_follow_libpq_and_wrong_combinations_say_what_is_missing() {
        assert_eq!(mode("postgres://db/app"), Ok(SslMode::Prefer));
        assert_eq!(
            mode("postgres://db/app?sslmode=disable"),
            Ok(SslMode::Disable)
        );
        assert_eq!(
            mode("postgres://db/app?sslmode=require"),
            Ok(SslMode::Require)
        );
        assert_eq!(mode("host=db sslmode=require"), Ok(SslMode::Require));
        let e = mode("postgres://db/app?sslmode=verify-full").unwrap_err();
        assert!(
            e.contains("sslmode=verify-full") && e.contains("sslrootcert"),
            "{e}"
        );
        let e = mode("postgres://db/app?sslmode=verify-ca&sslrootcert=system").unwrap_err();
        assert!(
            e.contains("sslrootcert=system needs sslmode=verify-full"),
            "{e}"
        );
        let e = mode("postgres://db/app?sslmode=strict").unwrap_err();
        assert!(e.contains("sslmode=strict is not one of"), "{e}");
        let e = mode("postgres://db/app?sslmode=require&sslcert=c.pem").unwrap_err();
        assert!(e.contains("sslcert and sslkey go together"), "{e}");
        let e = mode("postgres://u:secret@db/app?sslmode=verify-ca&sslrootcert=/nonexistent.pem")
            .unwrap_err();
        assert!(
            e.contains("sslrootcert: cannot read /nonexistent.pem"),
            "{e}"
        );
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn urls_that_cannot_work_are_configuration_errors() {
        for url in [
            "postgres:///objectsync",
            "postgres://u:secret@/objectsync",
            "postgres://u:secret@db:notaport/objectsync",
            "postgress://u:secret@db/objectsync",
            "postgres://u:secret@db/objectsync?sslmode=strict",
        ] {
            let Err(e) = Target::parse(url) else {
                panic!("{url} was taken");
            };
            assert!(e.is_configuration(), "{url}: {e}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        let e = Target::parse("postgres://u@db:notaport/x").err().unwrap();
        assert!(e.to_string().contains("port"), "{e}");
    }
}
