//! RabbitMQ's URI query parameters for TLS (`cacertfile`, `certfile`,
//! `keyfile`, `verify`, `server_name_indication`), taken out of a URL and
//! made into the rustls set-up of its node.

use std::path::Path;
use std::sync::Arc;

use lapin::tcp::RustlsConnector;
use percent_encoding::percent_decode_str;
use rustls::RootCertStore;

use super::node::AmqpUrlError;
use crate::tls::{self, Check, ClientFiles};

/// RabbitMQ's TLS parameters of one URL, taken out of it (percent-decoded).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct TlsParams {
    cacertfile: Option<String>,
    certfile: Option<String>,
    keyfile: Option<String>,
    verify: Option<String>,
    server_name_indication: Option<String>,
    password: Option<String>,
}

impl TlsParams {
    /// The first parameter given, for the error of one on a plain URL.
    pub(super) fn first_given(&self) -> Option<&'static str> {
        [
            ("cacertfile", &self.cacertfile),
            ("certfile", &self.certfile),
            ("keyfile", &self.keyfile),
            ("verify", &self.verify),
            ("server_name_indication", &self.server_name_indication),
            ("password", &self.password),
        ]
        .into_iter()
        .find_map(|(name, value)| value.as_ref().map(|_| name))
    }
}

/// `url` less its TLS parameters, and those parameters. `depth` and
/// `fail_if_no_peer_cert` (server-side options) are taken out and ignored.
pub(super) fn split_url(url: &str) -> (String, TlsParams) {
    let mut params = TlsParams::default();
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), params);
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || Some(percent_decode_str(value).decode_utf8_lossy().into_owned());
        match key {
            "cacertfile" => params.cacertfile = value(),
            "certfile" => params.certfile = value(),
            "keyfile" => params.keyfile = value(),
            "verify" => params.verify = value(),
            "server_name_indication" => params.server_name_indication = value(),
            "password" => params.password = value(),
            "depth" | "fail_if_no_peer_cert" => {}
            _ => kept.push(pair),
        }
    }
    let url = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    (url, params)
}

/// How a node is reached over TLS.
#[derive(Clone)]
pub(super) struct NodeTls {
    pub(super) connector: RustlsConnector,
    /// The name sent in SNI and, with `verify_peer`, looked for in the
    /// certificate: `server_name_indication`, else the URL's host.
    pub(super) server_name: String,
    /// Where the roots come from, for the message of a failed check.
    pub(super) roots: &'static str,
}

/// The TLS set-up of an `amqps://` URL to `host`: `verify_peer` (the
/// default) checks the chain against `cacertfile` (else the system's
/// roots) and the name against `server_name_indication` (else the host);
/// `server_name_indication=disable` sends no name and checks the chain
/// only; `verify_none` checks nothing.
pub(super) fn node_tls(
    host: &str,
    params: &TlsParams,
    shown: &str,
) -> Result<NodeTls, AmqpUrlError> {
    let url = || shown.to_owned();
    if params.password.is_some() {
        return Err(AmqpUrlError::KeyPassword { url: url() });
    }
    let sni = params.server_name_indication.as_deref();
    let check = match params.verify.as_deref() {
        None | Some("verify_peer") if sni == Some("disable") => Check::Chain,
        None | Some("verify_peer") => Check::Full,
        Some("verify_none") => Check::Nothing,
        Some(other) => {
            return Err(AmqpUrlError::Verify {
                url: url(),
                value: other.to_owned(),
            });
        }
    };
    let files = |source| AmqpUrlError::Tls { url: url(), source };
    let (roots, named): (RootCertStore, &'static str) = match (check, &params.cacertfile) {
        (Check::Nothing, _) => (RootCertStore::empty(), "nothing"),
        (_, Some(path)) => (
            tls::root_store("cacertfile", Path::new(path)).map_err(files)?,
            "cacertfile",
        ),
        (_, None) => (
            tls::system_roots("amqps:// without cacertfile").map_err(files)?,
            "the system's trust store (no cacertfile given)",
        ),
    };
    let client = match (&params.certfile, &params.keyfile) {
        (Some(cert), Some(key)) => Some(
            tls::client_certificate(&ClientFiles {
                cert_param: "certfile",
                cert: Path::new(cert),
                key_param: "keyfile",
                key: Path::new(key),
            })
            .map_err(files)?,
        ),
        (Some(_), None) => {
            return Err(AmqpUrlError::HalfClientCertificate {
                url: url(),
                param: "certfile",
            });
        }
        (None, Some(_)) => {
            return Err(AmqpUrlError::HalfClientCertificate {
                url: url(),
                param: "keyfile",
            });
        }
        (None, None) => None,
    };
    let mut config = tls::client_config(check, Arc::new(roots), client).map_err(files)?;
    let server_name = match sni {
        Some("disable") | None => host.to_owned(),
        Some(name) => name.to_owned(),
    };
    config.enable_sni = sni != Some("disable");
    Ok(NodeTls {
        connector: RustlsConnector::from(config),
        server_name,
        roots: named,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_and_the_rest_kept() {
        let (rest, params) = split_url(
            "amqps://u:p@mq.example.com:5671/%2f?cacertfile=%2Fetc%2Fca.pem&heartbeat=10\
             &verify=verify_peer&server_name_indication=mq.internal&depth=3",
        );
        assert_eq!(rest, "amqps://u:p@mq.example.com:5671/%2f?heartbeat=10");
        assert_eq!(params.cacertfile.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(params.verify.as_deref(), Some("verify_peer"));
        assert_eq!(
            params.server_name_indication.as_deref(),
            Some("mq.internal")
        );
    }
}
