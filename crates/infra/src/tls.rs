//! What TLS to PostgreSQL and TLS to RabbitMQ share: reading PEM files
//! (roots, a client certificate and its key), the platform's roots, a
//! rustls client configuration (ring as the crypto provider) that checks
//! nothing, the chain, or the chain and the name, and handshake failures
//! told in the words an operator searches for ("TLS certificate verify
//! failed: unknown issuer").

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CertificateError, RootCertStore};

mod verify;

pub(crate) use verify::{Check, client_config};

/// Why a TLS set-up cannot be made from the files and settings given. The
/// file's parameter (`sslrootcert`, `cacertfile`…) and path are named.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("{what}: cannot read {}: {source}", .path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{what}: {} holds no PEM certificate", .path.display())]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("{what}: no usable root certificate found on this system")]
    NoSystemRoots { what: &'static str },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS configuration: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// The root certificates of the PEM file `path` (parameter `what`).
pub(crate) fn root_store(what: &'static str, path: &Path) -> Result<RootCertStore, TlsConfigError> {
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certificates(what, path)?);
    if added == 0 {
        return Err(TlsConfigError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(store)
}

/// The platform's root certificates (what `system` or no CA file asks for).
pub(crate) fn system_roots(what: &'static str) -> Result<RootCertStore, TlsConfigError> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "a system root certificate could not be loaded");
    }
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(found.certs);
    match added {
        0 => Err(TlsConfigError::NoSystemRoots { what }),
        _ => Ok(store),
    }
}

/// Every certificate of the PEM file `path`; none is an error.
pub(crate) fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let read = |source| TlsConfigError::Read {
        what,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// A client certificate chain and its key, and the parameters naming them.
pub(crate) struct ClientFiles<'a> {
    pub(crate) cert_param: &'static str,
    pub(crate) cert: &'a Path,
    pub(crate) key_param: &'static str,
    pub(crate) key: &'a Path,
}

/// A client certificate (chain) and its private key, from PEM files.
pub(crate) fn client_certificate(
    files: &ClientFiles<'_>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsConfigError> {
    let certs = certificates(files.cert_param, files.cert)?;
    let key = PrivateKeyDer::from_pem_file(files.key).map_err(|source| TlsConfigError::Read {
        what: files.key_param,
        path: files.key.to_owned(),
        source,
    })?;
    Ok((certs, key))
}

/// The rustls error inside an I/O error from a TLS stream, if any.
pub(crate) fn rustls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let io = e.downcast_ref::<std::io::Error>()?;
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A failed TLS handshake, said so that a certificate that did not pass
/// comes first: "TLS certificate verify failed: unknown issuer (the
/// server's certificate does not chain to a root certificate of
/// sslrootcert)". The original error is the source.
#[derive(Debug)]
pub struct HandshakeFailure {
    /// Who presented the certificate ("server", "broker").
    peer: &'static str,
    /// Where the roots came from ("sslrootcert", "cacertfile"…).
    roots: &'static str,
    source: Box<dyn StdError + Send + Sync>,
}

impl HandshakeFailure {
    pub(crate) fn new(
        peer: &'static str,
        roots: &'static str,
        source: Box<dyn StdError + Send + Sync>,
    ) -> Self {
        Self {
            peer,
            roots,
            source,
        }
    }
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match rustls_error(&*self.source) {
            Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => write!(
                f,
                "TLS certificate verify failed: unknown issuer (the {}'s certificate does not \
                 chain to a root certificate of {})",
                self.peer, self.roots
            ),
            Some(rustls::Error::InvalidCertificate(reason)) => {
                write!(f, "TLS certificate verify failed: {reason}")
            }
            Some(other) => write!(f, "TLS: {other}"),
            None => write!(f, "TLS: {}", self.source),
        }
    }
}

impl StdError for HandshakeFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}
