//! What ingest (registering webhooks) and the workers (delivering to them)
//! share: the secret and its `whsec_` form, the signature of Standard
//! Webhooks 1.0, and which URLs and addresses a webhook may reach.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::{Host, Url};

/// Bytes of a webhook's key (Standard Webhooks asks for 24 to 64).
pub const KEY_BYTES: usize = 32;

/// The longest URL a webhook may have.
pub const MAX_URL_CHARS: usize = 2048;

/// A new random key.
pub fn new_key() -> Result<Vec<u8>, getrandom::Error> {
    let mut key = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut key)?;
    Ok(key)
}

/// The secret as receivers configure it: `whsec_` and the key in base64.
pub fn secret_text(key: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

/// The `webhook-signature` header of a delivery: `v1,` and the base64
/// HMAC-SHA256, under `key`, of `{id}.{timestamp}.{body}`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether a webhook may reach `ip` when private addresses are refused:
/// not loopback, private (RFC 1918, unique local), link-local (cloud
/// metadata services live there), shared (carrier-grade NAT),
/// unspecified, broadcast, multicast or documentation ranges.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local())
            }
        },
    }
}

/// Reads a webhook URL: absolute `http` or `https` with a host, at most
/// [`MAX_URL_CHARS`]; with `allow_private` false, a host that is an
/// address must be public (a name is checked when it is resolved, on each
/// attempt). The error says what is wrong.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, String> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!("is longer than {MAX_URL_CHARS} characters"));
    }
    let url = Url::parse(raw).map_err(|e| format!("is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be http or https, not {}", url.scheme()));
    }
    let ip = match url.host() {
        None => return Err("has no host".into()),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(ip) = ip
        && !allow_private
        && !is_public(ip)
    {
        return Err(format!(
            "names {ip}, a private or local address, which webhooks may not reach here"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_example_does() {
        // The example of the Standard Webhooks reference libraries.
        let key = STANDARD.decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            signature(
                &key,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn a_secret_is_whsec_and_the_key_in_base64() {
        let key = new_key().unwrap();
        assert_eq!(key.len(), KEY_BYTES);
        let text = secret_text(&key);
        let decoded = STANDARD
            .decode(text.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(decoded, key);
    }

    #[test]
    fn private_and_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://example.com/hooks", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/h", true).is_ok());
        assert!(check_url("http://127.0.0.1:9000/h", false).is_err());
        assert!(check_url("http://[::1]/h", false).is_err());
        assert!(check_url("ftp://example.com/h", true).is_err());
        assert!(check_url("/relative", true).is_err());
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(3000)), true).is_err());
    }
}
