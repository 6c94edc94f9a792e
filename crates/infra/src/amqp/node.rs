//! One RabbitMQ node as its URL names it: `amqp://`, or `amqps://` with
//! RabbitMQ's URI query parameters for TLS (`cacertfile`, `certfile`,
//! `keyfile`, `verify`, `server_name_indication`), so that the URL a
//! managed RabbitMQ hands out works as it is.
//!
//! lapin reads the rest of the URL (credentials, vhost, `heartbeat`,
//! `channel_max`…) and ignores the TLS parameters; they are read here and
//! made into one rustls configuration per node (ring, as for PostgreSQL),
//! and the TLS handshake is done by lapin's own rustls stream with it.

use lapin::tcp::AsyncTcpStream;
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties};

use super::tls::{NodeTls, node_tls, split_url};
use crate::settings::SecretUrl;
use crate::tls::{HandshakeFailure, TlsConfigError};

/// Why a broker URL cannot be used. The URL is shown with its password
/// replaced.
#[derive(Debug, thiserror::Error)]
pub enum AmqpUrlError {
    #[error("AMQP URL {url}: {reason}")]
    Invalid { url: String, reason: String },
    #[error(
        "AMQP URL {url}: {param} is a TLS parameter, and an amqp:// URL is plain TCP; use amqps://"
    )]
    TlsOnPlain { url: String, param: &'static str },
    #[error("AMQP URL {url}: verify={value} is not one of verify_peer, verify_none")]
    Verify { url: String, value: String },
    #[error("AMQP URL {url}: certfile and keyfile go together: {param} is set without the other")]
    HalfClientCertificate { url: String, param: &'static str },
    #[error(
        "AMQP URL {url}: password (of an encrypted keyfile) is not supported; give keyfile as an \
         unencrypted PEM key"
    )]
    KeyPassword { url: String },
    #[error("AMQP URL {url}: {source}")]
    Tls {
        url: String,
        #[source]
        source: TlsConfigError,
    },
    #[error("no AMQP URL: set AMQP_URL or OBJECTSYNC__AMQP__URLS")]
    NoUrl,
}

/// One node of the broker: where it is and how to talk to it.
#[derive(Clone)]
pub struct Node {
    uri: AMQPUri,
    shown: String,
    tls: Option<NodeTls>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Node {
    /// Reads `url`; its files (CA, client certificate and key) are read
    /// now, so that a wrong path stops the process at start.
    pub fn parse(url: &SecretUrl) -> Result<Self, AmqpUrlError> {
        let raw = url.expose_secret();
        let shown = url.redacted();
        let invalid = |reason: String| AmqpUrlError::Invalid {
            url: shown.clone(),
            reason: reason.replace(raw, &shown),
        };
        let (rest, params) = split_url(raw);
        let mut uri: AMQPUri = rest.parse().map_err(invalid)?;
        // lapin's reader takes an IPv6 host for no host at all
        // ("localhost"): read the host again.
        let parsed = url::Url::parse(&rest).map_err(|e| invalid(e.to_string()))?;
        if let Some(url::Host::Ipv6(address)) = parsed.host() {
            uri.authority.host = address.to_string();
        }
        let tls = match uri.scheme {
            AMQPScheme::AMQP => match params.first_given() {
                Some(param) => return Err(AmqpUrlError::TlsOnPlain { url: shown, param }),
                None => None,
            },
            AMQPScheme::AMQPS => Some(node_tls(&uri.authority.host, &params, &shown)?),
        };
        Ok(Self { uri, shown, tls })
    }

    /// The URL with its password replaced, for logs and errors.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Opens a connection to this node (no topology, no timeout: see
    /// `Broker`). A TLS handshake that fails says why, the certificate's
    /// problem first; a plain connection answered by something else than
    /// AMQP (a TLS port) says what to change.
    pub async fn connect(&self, properties: ConnectionProperties) -> lapin::Result<Connection> {
        let result = self.open(properties).await;
        match (&self.tls, result) {
            (None, Err(e))
                if matches!(
                    e.kind(),
                    lapin::ErrorKind::ParsingError(_) | lapin::ErrorKind::InvalidProtocolVersion(_)
                ) || closed_at_handshake(&e) =>
            {
                let said = format!(
                    "the port does not answer in plain AMQP; if it is a TLS port, the URL is \
                     amqps:// ({e})"
                );
                Err(std::io::Error::new(std::io::ErrorKind::InvalidData, said).into())
            }
            (_, result) => result,
        }
    }

    async fn open(&self, properties: ConnectionProperties) -> lapin::Result<Connection> {
        let runtime = lapin::runtime::default_runtime()?;
        let tls = self.tls.clone();
        Connection::connector(
            self.uri.clone(),
            runtime,
            async move |uri, runtime| {
                let host = (uri.authority.host.clone(), uri.authority.port);
                let stream = AsyncTcpStream::connect(&runtime, runtime.to_socket_addrs(host))
                    .await
                    .map_err(lapin::Error::from)?;
                let Some(tls) = &tls else {
                    return Ok(stream);
                };
                stream
                    .into_rustls(&tls.connector, &tls.server_name)
                    .await
                    .map_err(|e| {
                        let failure = HandshakeFailure::new("broker", tls.roots, Box::new(e));
                        std::io::Error::new(std::io::ErrorKind::InvalidData, failure).into()
                    })
            },
            properties,
        )
        .await
    }
}

/// Whether the server closed the connection before AMQP's handshake ended:
/// a TLS port read our plain protocol header as a bad TLS record and reset
/// the connection (or closed it), which is the other way it answers a plain
/// client besides bytes that do not parse as AMQP.
fn closed_at_handshake(e: &lapin::Error) -> bool {
    matches!(
        e.kind(),
        lapin::ErrorKind::IOError(io) if matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<Node, String> {
        Node::parse(&SecretUrl::from(url)).map_err(|e| e.to_string())
    }

    #[test]
    fn wrong_urls_say_what_is_wrong_without_the_password() {
        for (url, says) in [
            (
                "amqp://u:secret@mq:5672/%2f?cacertfile=/ca.pem",
                "cacertfile is a TLS parameter",
            ),
            (
                "amqps://u:secret@mq/%2f?verify=strict",
                "verify=strict is not one of",
            ),
            (
                "amqps://u:secret@mq/%2f?certfile=/c.pem",
                "certfile and keyfile go together",
            ),
            (
                "amqps://u:secret@mq/%2f?cacertfile=/nonexistent.pem",
                "cacertfile: cannot read /nonexistent.pem",
            ),
            ("amqp://u:secret@mq:notaport/%2f", "invalid port"),
            ("http://u:secret@mq/", "AMQP URL http://u:***@mq/"),
        ] {
            let e = parse(url)
                .err()
                .unwrap_or_else(|| panic!("{url} was taken"));
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn hosts_and_ports_are_read_as_written() {
        let node = parse("amqp://guest:guest@127.0.0.1:5673/%2f").unwrap();
        assert_eq!(node.uri.authority.host, "127.0.0.1");
        assert_eq!(node.uri.authority.port, 5673);
        let node = parse("amqp://[::1]/%2f").unwrap();
        assert_eq!(node.uri.authority.host, "::1");
        let node = parse("amqps://mq.example.com/%2f?verify=verify_none").unwrap();
        assert_eq!(node.uri.authority.port, 5671);
        assert_eq!(
            node.shown(),
            "amqps://mq.example.com/%2f?verify=verify_none"
        );
    }
}
