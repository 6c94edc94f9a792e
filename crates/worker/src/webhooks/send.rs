//! One attempt of one delivery: the event's JSON POSTed with the headers
//! of Standard Webhooks 1.0, signed with the webhook's key, within the
//! timeout; and the HTTP client that makes it, which can refuse to reach
//! private addresses.

use std::net::SocketAddr;
use std::sync::Arc;

use objectsync_infra::settings::WebhookSettings;
use objectsync_infra::webhook::{check_url, is_public, signature};
use objectsync_store::deliveries::Taken;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What an attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A 2xx: delivered.
    Delivered,
    /// Anything else (an answer that is not 2xx, no answer in time, no
    /// connection): try again later.
    Retry(String),
    /// Nothing could ever be delivered (the URL is refused, the process is
    /// no longer kept): failed at once.
    GiveUp(String),
}

/// The client every attempt of a worker uses.
pub(crate) fn client(settings: &WebhookSettings) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout())
        .connect_timeout(settings.timeout())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("objectsync-webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(settings.per_endpoint as usize);
    if !settings.allow_private_addresses {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder.build()
}

/// A resolver that keeps only the public addresses a name resolves to, so
/// a webhook host whose name points inside the network (or is made to, by
/// DNS rebinding after it was registered) is never connected to.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                all.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let e = format!(
                    "{host} resolves to private or local addresses only, which webhooks may not reach here"
                );
                return Err(e.into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Makes one attempt of `d`.
pub(crate) async fn attempt(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    d: &Taken,
) -> Outcome {
    let Some(event) = &d.event else {
        return Outcome::GiveUp("the process of this event is no longer kept".into());
    };
    let url = match check_url(&d.url, settings.allow_private_addresses) {
        Ok(url) => url,
        Err(e) => return Outcome::GiveUp(format!("the URL {e}")),
    };
    let body = event.to_json();
    let id = d.event_id.to_string();
    let now = chrono::Utc::now().timestamp();
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature(&d.secret, &id, now, &body))
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => Outcome::Delivered,
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            Outcome::Retry(format!("HTTP {status}: {}", text.trim()))
        }
        Err(e) if e.is_timeout() => Outcome::Retry(format!(
            "no answer within {} ms",
            settings.timeout().as_millis()
        )),
        Err(e) => Outcome::Retry(chain(&e)),
    }
}

/// An error with its causes, which say what actually went wrong
/// (connection refused, a name that does not resolve, a TLS failure).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
