//! The three ways of checking a server's certificate: nothing, the chain,
//! the chain and the name.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::TlsConfigError;

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing (`sslmode=require`, `verify=verify_none`): the handshake's
    /// signature is still checked against the certificate's key, so the
    /// session is encrypted to whoever holds that key.
    Nothing,
    /// That it chains to a root (`verify-ca`), whatever names it holds.
    Chain,
    /// That it chains to a root and names the host (`verify-full`,
    /// `verify=verify_peer`).
    Full,
}

/// A rustls client configuration (ring as the crypto provider) that checks
/// what `check` says against `roots`, presenting `client` if given.
pub(crate) fn client_config(
    check: Check,
    roots: Arc<RootCertStore>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TlsConfigError> {
    // ring keeps the build free of a C toolchain step; rustls deprecates
    // it for lacking post-quantum key exchange, which a link to a database
    // or broker inside one network can do without for now.
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

/// The checks rustls's own verifier does not offer: none or the chain
/// without the name. Either way the handshake's signatures are checked
/// against the certificate's key.
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
