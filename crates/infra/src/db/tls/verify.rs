//! The connector of every PostgreSQL connection, which says, when a
//! handshake fails, which check failed and why (see `crate::tls`).

use std::future::Future;
use std::pin::Pin;

use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::tls::HandshakeFailure;

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
    type Error = HandshakeFailure;
    type Future = Pin<Box<dyn Future<Output = Result<T::Stream, HandshakeFailure>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let handshake = self.0.connect(stream);
        Box::pin(async move {
            handshake
                .await
                .map_err(|e| HandshakeFailure::new("server", "sslrootcert", e.into()))
        })
    }
}
