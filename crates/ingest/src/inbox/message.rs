//! Reading an inbox message: the parts of an HTTP batch request, from where
//! AMQP carries them.
//!
//! | HTTP | inbox message |
//! |---|---|
//! | `/batch/upsert`, `/batch/delete` | header `kind`: `upsert` or `delete` |
//! | `{object_type}` in the path | the routing key |
//! | header `api-key` | header `api-key` |
//! | header `Idempotency-Key` | property `message_id` (else a digest, see [`Incoming::idempotency_key`]) |
//! | headers `Content-Type`, `Content-Encoding` | properties `content_type`, `content_encoding` |
//! | header `x-request-id` | header `x-request-id` (else the `message_id`) |
//! | the body | the body |

use axum::http::{HeaderMap, HeaderValue, header};
use lapin::message::Delivery;
use lapin::types::ShortString;
use objectsync_infra::message::header;
use objectsync_model::{HeaderValue as Field, ProcessKind};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// An inbox message, read as far as it can be: what cannot be read becomes
/// the refusal the HTTP API would have answered, checked in the same order.
#[derive(Debug)]
pub(crate) struct Incoming<'a> {
    /// The routing key.
    pub(crate) object_type: &'a str,
    /// `Err`: the `400` of a missing or unknown `kind`.
    pub(crate) kind: Result<ProcessKind, ApiError>,
    /// `None` (missing, or not a string): the `401` of a request without
    /// an `api-key`.
    pub(crate) api_key: Option<String>,
    /// `Content-Type` and `Content-Encoding`, for `web::check_media_type`.
    pub(crate) media: HeaderMap,
    pub(crate) message_id: Option<&'a str>,
    pub(crate) request_id: String,
    /// The queue to answer to, if any.
    pub(crate) reply_to: Option<ShortString>,
    /// Copied onto the answer.
    pub(crate) correlation_id: Option<ShortString>,
    pub(crate) body: &'a [u8],
}

fn text(delivery: &Delivery, name: &str) -> Option<String> {
    match header(&delivery.properties, name)? {
        Field::Text(t) => Some(t),
        Field::Int(_) => None,
    }
}

fn non_empty(s: Option<&ShortString>) -> Option<&ShortString> {
    s.filter(|s| !s.as_str().is_empty())
}

/// The header value of a property, or a placeholder the media-type check
/// refuses by name (a property of bytes a header cannot hold).
fn media_value(s: &ShortString) -> HeaderValue {
    HeaderValue::from_str(s.as_str()).unwrap_or(HeaderValue::from_static("(not ASCII)"))
}

impl<'a> Incoming<'a> {
    pub(crate) fn read(delivery: &'a Delivery) -> Self {
        let props = &delivery.properties;
        let kind = match text(delivery, "kind").as_deref() {
            Some("upsert") => Ok(ProcessKind::Upsert),
            Some("delete") => Ok(ProcessKind::Delete),
            Some(other) => Err(ApiError::invalid(format!(
                "header 'kind' must be 'upsert' or 'delete', not '{other}'"
            ))),
            None => Err(ApiError::new(
                objectsync_model::ApiCode::MissingParameter,
                "header 'kind' is missing: send 'upsert' or 'delete' (a string)",
            )),
        };
        let mut media = HeaderMap::new();
        if let Some(t) = props.content_type() {
            media.insert(header::CONTENT_TYPE, media_value(t));
        }
        if let Some(e) = props.content_encoding() {
            media.insert(header::CONTENT_ENCODING, media_value(e));
        }
        let message_id = non_empty(props.message_id().as_ref()).map(ShortString::as_str);
        // Every delivery of one message logs the same request id when it
        // can: the producer's, else its message id.
        let request_id = text(delivery, "x-request-id")
            .or_else(|| message_id.map(str::to_owned))
            .filter(|id| crate::trace::usable(id.as_bytes()))
            .unwrap_or_else(crate::trace::new_id);
        Self {
            object_type: delivery.routing_key.as_str(),
            kind,
            api_key: text(delivery, "api-key"),
            media,
            message_id,
            request_id,
            reply_to: non_empty(props.reply_to().as_ref()).cloned(),
            correlation_id: props.correlation_id().clone(),
            body: &delivery.data,
        }
    }

    /// The idempotency key of the batch: its `message_id`; without one, a
    /// digest of what the message asks (kind, routing key, body, and the
    /// `correlation_id` if any), so that a message the broker delivers
    /// again after a crash finds the process its first delivery created.
    /// Two messages alike in all of that within 24 hours are one batch: a
    /// producer that sends the same batch again on purpose gives each a
    /// `message_id` (or a `correlation_id`) of its own.
    pub(crate) fn idempotency_key(&self, kind: ProcessKind) -> String {
        if let Some(id) = self.message_id {
            return id.to_owned();
        }
        let mut hasher = Sha256::new();
        for part in [
            kind.name().as_bytes(),
            self.object_type.as_bytes(),
            self.correlation_id
                .as_ref()
                .map_or(&b""[..], |c| c.as_str().as_bytes()),
        ] {
            hasher.update(part);
            hasher.update([0]);
        }
        hasher.update(self.body);
        format!("inbox-sha256:{}", hex::encode(hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use lapin::BasicProperties;
    use lapin::types::{AMQPValue, FieldTable};

    use super::*;

    fn delivery(props: BasicProperties, body: &[u8]) -> Delivery {
        let mut d = Delivery::mock(1, "x.inbox".into(), "vehicle".into(), false, body.to_vec());
        d.properties = props;
        d
    }

    fn with_headers(pairs: &[(&str, &str)]) -> BasicProperties {
        let mut h = FieldTable::default();
        for (k, v) in pairs {
            h.insert((*k).into(), AMQPValue::LongString((*v).into()));
        }
        BasicProperties::default().with_headers(h)
    }

    #[test]
    fn a_message_reads_as_the_request_it_stands_for() {
        let props = with_headers(&[("api-key", "osk_k"), ("kind", "delete")])
            .with_content_type("text/csv".into())
            .with_message_id("m-1".into())
            .with_reply_to("replies".into())
            .with_correlation_id("c-1".into());
        let d = delivery(props, b"{}");
        let m = Incoming::read(&d);
        assert_eq!(m.object_type, "vehicle");
        assert_eq!(m.kind, Ok(ProcessKind::Delete));
        assert_eq!(m.api_key.as_deref(), Some("osk_k"));
        assert_eq!(m.media[header::CONTENT_TYPE], "text/csv");
        assert_eq!(m.request_id, "m-1", "the message id, without x-request-id");
        assert_eq!(
            m.reply_to.as_ref().map(ShortString::as_str),
            Some("replies")
        );
        assert_eq!(m.idempotency_key(ProcessKind::Delete), "m-1");
    }

    #[test]
    fn a_missing_or_unknown_kind_is_a_400_and_a_key_must_be_a_string() {
        let mut h = FieldTable::default();
        h.insert("api-key".into(), AMQPValue::LongInt(7));
        h.insert("kind".into(), AMQPValue::LongString("merge".into()));
        let d = delivery(BasicProperties::default().with_headers(h), b"{}");
        let m = Incoming::read(&d);
        assert_eq!(m.kind.unwrap_err().code.status(), 400);
        assert_eq!(m.api_key, None);
        let d = delivery(BasicProperties::default().with_message_id("".into()), b"{}");
        let m = Incoming::read(&d);
        assert_eq!(
            m.kind.unwrap_err().code,
            objectsync_model::ApiCode::MissingParameter
        );
        assert_eq!(m.message_id, None, "an empty message id is none");
        assert_eq!(m.request_id.len(), 32, "a new request id");
    }

    #[test]
    fn without_a_message_id_the_key_is_a_digest_of_what_the_message_asks() {
        let key = |correlation: Option<&str>, body: &[u8], kind| {
            let mut props = BasicProperties::default();
            if let Some(c) = correlation {
                props = props.with_correlation_id(c.into());
            }
            let d = delivery(props, body);
            Incoming::read(&d).idempotency_key(kind)
        };
        let upsert = ProcessKind::Upsert;
        let first = key(Some("c-1"), b"{\"records\":[]}", upsert);
        assert!(first.starts_with("inbox-sha256:") && first.len() <= 255);
        assert_eq!(first, key(Some("c-1"), b"{\"records\":[]}", upsert));
        assert_ne!(first, key(Some("c-2"), b"{\"records\":[]}", upsert));
        assert_ne!(first, key(None, b"{\"records\":[]}", upsert));
        assert_ne!(first, key(Some("c-1"), b"{\"records\":[1]}", upsert));
        assert_ne!(
            first,
            key(Some("c-1"), b"{\"records\":[]}", ProcessKind::Delete)
        );
    }
}
