//! The three ways of checking a server's certificate (nothing, the chain,
//! the chain and the name), and the connector that says, when a check
//! fails, which one and why.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::TlsSetupError;

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// Nothing (`require`): the handshake's signature is still checked
    /// against the certificate's key, so the session is encrypted to
    /// whoever holds that key.
    Nothing,
    /// That it chains to a root (`verify-ca`), whatever names it holds.
    Chain,
    /// That it chains to a root and names the host (`verify-full`).
    Full,
}

/// A rustls client configuration (ring as the crypto provider) that checks
/// what `check` says against `roots`, presenting `client` if given.
pub(super) fn client_config(
    check: Check,
    roots: Arc<RootCertStore>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TlsSetupError> {
    // ring keeps the build free of a C toolchain step; rustls deprecates
    // it for lacking post-quantum key exchange, which a database link
    // inside one network can do without for now.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::Nothing => Arc::new(Partial {
            roots: None,
            algorithms,
        }),
        Check::Chain => Arc::new(Partial {
            roots: Some(roots),
            algorithms,
        }),
        Check::Full => {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build()?
        }
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    Ok(match client {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key)?,
        None => builder.with_no_client_auth(),
    })
}

/// The checks rustls's own verifier does not offer: none (`require`) or
/// the chain without the name (`verify-ca`). Either way the handshake's
/// signatures are checked against the certificate's key.
#[derive(Debug)]
struct Partial {
    /// With roots, the certificate must chain to one of them; without,
    /// any certificate is taken.
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Partial {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The TLS connector of every PostgreSQL connection: tokio-postgres-rustls,
/// with handshake failures told in words an operator searches for.
#[derive(Clone)]
pub struct PgTls(MakeRustlsConnect);

impl PgTls {
    pub(super) fn new(config: ClientConfig) -> Self {
        Self(MakeRustlsConnect::new(config))
    }
}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = PgTlsConnect<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        <MakeRustlsConnect as MakeTlsConnect<S>>::make_tls_connect(&mut self.0, domain)
            .map(PgTlsConnect)
    }
}

/// One handshake of [`PgTls`].
pub struct PgTlsConnect<T>(T);

impl<S, T> TlsConnect<S> for PgTlsConnect<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send + 'static,
{
    type Stream = T::Stream;
    type Error = HandshakeError;
    type Future = Pin<Box<dyn Future<Output = Result<T::Stream, HandshakeError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let handshake = self.0.connect(stream);
        Box::pin(async move { handshake.await.map_err(|e| HandshakeError(e.into())) })
    }
}

/// A failed TLS handshake; a certificate that did not pass says so first
/// ("TLS certificate verify failed: unknown issuer").
#[derive(Debug)]
pub struct HandshakeError(Box<dyn StdError + Send + Sync>);

impl HandshakeError {
    fn rustls(&self) -> Option<&rustls::Error> {
        let io = self.0.downcast_ref::<std::io::Error>()?;
        io.get_ref()?.downcast_ref::<rustls::Error>()
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rustls() {
            Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => f
                .write_str(
                    "TLS certificate verify failed: unknown issuer (the server's certificate \
                     does not chain to a root certificate of sslrootcert)",
                ),
            Some(rustls::Error::InvalidCertificate(reason)) => {
                write!(f, "TLS certificate verify failed: {reason}")
            }
            _ => write!(f, "TLS: {}", self.0),
        }
    }
}

impl StdError for HandshakeError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}
