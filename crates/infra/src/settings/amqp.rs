//! Where RabbitMQ is: one URL (`AMQP_URL`, `amqp.url`) or the nodes of a
//! cluster (`OBJECTSYNC__AMQP__URLS`, `amqp.urls`), and how objectsync
//! names its queues there.

use serde::Deserialize;

use super::SecretUrl;

/// The broker of a machine with RabbitMQ installed the default way.
const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "AmqpFields")]
pub struct AmqpSettings {
    /// The nodes, in the order they are tried: `amqp.urls`, or the one
    /// `amqp.url`. Each is an `amqp://` or `amqps://` URL whose path is the
    /// vhost (`%2f` for `/`); never empty.
    pub urls: Vec<SecretUrl>,
    /// Prefix of every exchange and queue name, so that several deployments
    /// (or tests) can share a vhost.
    pub prefix: String,
    /// Deliveries of one batch, first one included, before it is
    /// dead-lettered and its process marked `failed`. Baked into the queue's
    /// `x-delivery-limit` (which counts redeliveries: this minus one) when the
    /// queue is first declared.
    pub max_deliveries: u32,
    /// Bulk queues: organizations with a backlog are spread over them, so
    /// that one organization's backlog does not delay another's.
    pub partitions: u16,
    /// Open batches from which an organization's next batches go to a bulk
    /// queue instead of the express queue, which therefore never holds more
    /// than this many batches of one organization (see `Topology`).
    pub bulk_after: u32,
}

impl AmqpSettings {
    /// Settings for the one broker at `url`, the rest as `self`.
    pub fn with_url(&self, url: &str) -> Self {
        Self {
            urls: vec![url.into()],
            ..self.clone()
        }
    }
}

/// A list of URLs as the configuration gives it: an array (a file), or
/// one string of URLs separated by commas or white space (the environment).
#[derive(Deserialize)]
#[serde(untagged)]
enum UrlList {
    Many(Vec<String>),
    One(String),
}

impl UrlList {
    fn urls(self) -> Vec<SecretUrl> {
        let split = |s: String| -> Vec<SecretUrl> {
            s.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|u| !u.is_empty())
                .map(SecretUrl::from)
                .collect()
        };
        match self {
            Self::Many(list) => list.into_iter().flat_map(split).collect(),
            Self::One(text) => split(text),
        }
    }
}

/// The `[amqp]` section as written, before `url` and `urls` are made one
/// list.
#[derive(Deserialize)]
struct AmqpFields {
    url: Option<SecretUrl>,
    urls: Option<UrlList>,
    prefix: String,
    max_deliveries: u32,
    partitions: u16,
    bulk_after: u32,
}

impl TryFrom<AmqpFields> for AmqpSettings {
    type Error = String;

    fn try_from(f: AmqpFields) -> Result<Self, String> {
        let urls = match (f.url, f.urls.map(UrlList::urls)) {
            (Some(_), Some(list)) if !list.is_empty() => {
                return Err(
                    "amqp.url (AMQP_URL) and amqp.urls (OBJECTSYNC__AMQP__URLS) \
                            are both set; set one of them"
                        .into(),
                );
            }
            (_, Some(list)) if !list.is_empty() => list,
            (Some(url), _) => vec![url],
            (None, _) => vec![DEFAULT_URL.into()],
        };
        Ok(Self {
            urls,
            prefix: f.prefix,
            max_deliveries: f.max_deliveries,
            partitions: f.partitions,
            bulk_after: f.bulk_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::tests::env;
    use crate::settings::{Role, Settings};

    fn urls(s: &Settings) -> Vec<&str> {
        s.amqp.urls.iter().map(|u| u.expose_secret()).collect()
    }

    #[test]
    fn one_url_or_a_list_of_nodes() {
        let s = Settings::load_from(Role::Ingest, None, env(&[])).unwrap();
        assert_eq!(urls(&s), ["amqp://guest:guest@127.0.0.1:5672/%2f"]);
        let s = Settings::load_from(
            Role::Worker,
            None,
            env(&[(
                "OBJECTSYNC__AMQP__URLS",
                "amqps://u:p@mq-1:5671/%2f, amqps://u:p@mq-2:5671/%2f,amqps://u:p@mq-3:5671/%2f",
            )]),
        )
        .unwrap();
        assert_eq!(
            urls(&s),
            [
                "amqps://u:p@mq-1:5671/%2f",
                "amqps://u:p@mq-2:5671/%2f",
                "amqps://u:p@mq-3:5671/%2f"
            ]
        );
        assert!(!format!("{s:?}").contains("u:p@"));
        let dir = std::env::temp_dir().join(format!("objectsync-amqp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("objectsync.toml");
        std::fs::write(
            &path,
            "[amqp]\nurls = [\"amqp://a/%2f\", \"amqp://b/%2f\"]\n",
        )
        .unwrap();
        let s = Settings::load_from(Role::Ingest, Some(&path), env(&[])).unwrap();
        assert_eq!(urls(&s), ["amqp://a/%2f", "amqp://b/%2f"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_url_and_a_list_both_set_is_an_error_naming_both() {
        let e = Settings::load_from(
            Role::Ingest,
            None,
            env(&[
                ("AMQP_URL", "amqp://a/%2f"),
                ("OBJECTSYNC__AMQP__URLS", "amqp://b/%2f,amqp://c/%2f"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("AMQP_URL") && e.contains("OBJECTSYNC__AMQP__URLS"),
            "{e}"
        );
    }
}
