//! What travels with a batch from ingest to the workers.
//!
//! The message body is the request body, verbatim: the worker reads it with
//! the same function ingest checked it with (see [`crate::wire`]). Everything
//! else — which organization, which process, what kind, which object type,
//! which transaction created the process — travels in message headers, so a
//! worker can end the process `failed` with the reason even when the body
//! cannot be read at all (truncated, garbage, from another version).

use chrono::{DateTime, TimeZone, Utc};

use crate::ids::{OrgId, ProcessId};
use crate::names::ObjectTypeName;
use crate::process::ProcessKind;

/// The message version this build writes and reads. Version 3: the request
/// body verbatim, metadata in headers. A worker fails the process of a
/// message of any other version rather than guess at it.
pub const MESSAGE_VERSION: i64 = 3;

/// Header names, all prefixed so as not to clash with the broker's own.
pub mod header {
    pub const VERSION: &str = "x-objectsync-version";
    pub const ORG_ID: &str = "x-objectsync-org-id";
    pub const PROCESS_ID: &str = "x-objectsync-process-id";
    pub const KIND: &str = "x-objectsync-kind";
    pub const OBJECT_TYPE: &str = "x-objectsync-object-type";
    pub const XACT_ID: &str = "x-objectsync-xact-id";
    pub const ENQUEUED_AT_MS: &str = "x-objectsync-enqueued-at-ms";
    pub const REQUEST_ID: &str = "x-request-id";
}

/// A header value as the broker hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Int(i64),
    Text(String),
}

/// The metadata of one batch message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMeta {
    pub org_id: OrgId,
    pub process_id: ProcessId,
    pub kind: ProcessKind,
    pub object_type: ObjectTypeName,
    /// The PostgreSQL transaction that created the process row. The message
    /// is published before that transaction commits, so a worker that cannot
    /// see the process asks PostgreSQL whether it is still coming or was
    /// rolled back.
    pub xact_id: u64,
    /// When ingest accepted the batch; lets workers measure queue lag.
    pub enqueued_at: DateTime<Utc>,
    /// The id of the HTTP request that queued the batch, for the logs.
    pub request_id: Option<String>,
}

/// Why a message's metadata could not be read. Carries what could be read,
/// so that a message naming a real process still ends that process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct MetaError {
    pub org_id: Option<OrgId>,
    pub process_id: Option<ProcessId>,
    pub reason: String,
}

impl BatchMeta {
    /// The headers to publish, as (name, value) pairs.
    pub fn to_headers(&self) -> Vec<(&'static str, HeaderValue)> {
        let mut out = vec![
            (header::VERSION, HeaderValue::Int(MESSAGE_VERSION)),
            (header::ORG_ID, HeaderValue::Int(self.org_id.get())),
            (header::PROCESS_ID, HeaderValue::Int(self.process_id.get())),
            (header::KIND, HeaderValue::Text(self.kind.short().into())),
            (
                header::OBJECT_TYPE,
                HeaderValue::Text(self.object_type.as_str().into()),
            ),
            (
                header::XACT_ID,
                HeaderValue::Int(i64::try_from(self.xact_id).unwrap_or(i64::MAX)),
            ),
            (
                header::ENQUEUED_AT_MS,
                HeaderValue::Int(self.enqueued_at.timestamp_millis()),
            ),
        ];
        if let Some(id) = &self.request_id {
            out.push((header::REQUEST_ID, HeaderValue::Text(id.clone())));
        }
        out
    }

    /// Reads the metadata through `get` (a header lookup).
    pub fn from_headers(get: impl Fn(&str) -> Option<HeaderValue>) -> Result<Self, MetaError> {
        let int = |name: &str| match get(name) {
            Some(HeaderValue::Int(v)) => Some(v),
            Some(HeaderValue::Text(t)) => t.parse().ok(),
            None => None,
        };
        let text = |name: &str| match get(name) {
            Some(HeaderValue::Text(t)) => Some(t),
            Some(HeaderValue::Int(v)) => Some(v.to_string()),
            None => None,
        };
        let org_id = int(header::ORG_ID).map(OrgId);
        let process_id = int(header::PROCESS_ID).map(ProcessId);
        let fail = |reason: String| MetaError {
            org_id,
            process_id,
            reason,
        };
        match int(header::VERSION) {
            Some(MESSAGE_VERSION) => {}
            Some(v) => {
                return Err(fail(format!(
                    "message version {v} is not supported (this worker reads version {MESSAGE_VERSION})"
                )));
            }
            None => return Err(fail("the message has no objectsync version header".into())),
        }
        let (Some(org_id), Some(process_id)) = (org_id, process_id) else {
            return Err(fail(
                "the message does not name its organization and process".into(),
            ));
        };
        let kind = text(header::KIND)
            .ok_or_else(|| fail("the message does not say what kind of batch it is".into()))?
            .parse::<ProcessKind>()
            .map_err(fail)?;
        let object_type = text(header::OBJECT_TYPE)
            .and_then(|t| ObjectTypeName::parse(t).ok())
            .ok_or_else(|| fail("the message does not name a valid object type".into()))?;
        let xact_id = int(header::XACT_ID)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| {
                fail("the message does not name the transaction of its process".into())
            })?;
        let enqueued_at = int(header::ENQUEUED_AT_MS)
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or_else(Utc::now);
        Ok(Self {
            org_id,
            process_id,
            kind,
            object_type,
            xact_id,
            enqueued_at,
            request_id: text(header::REQUEST_ID),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn meta() -> BatchMeta {
        BatchMeta {
            org_id: OrgId(3),
            process_id: ProcessId(7),
            kind: ProcessKind::Delete,
            object_type: ObjectTypeName::parse("vehicle").unwrap(),
            xact_id: 42,
            enqueued_at: Utc.timestamp_millis_opt(1_700_000_000_123).unwrap(),
            request_id: Some("req-1".into()),
        }
    }

    fn lookup(pairs: Vec<(&'static str, HeaderValue)>) -> impl Fn(&str) -> Option<HeaderValue> {
        let map: HashMap<&str, HeaderValue> = pairs.into_iter().collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn round_trips_through_headers() {
        let m = meta();
        assert_eq!(BatchMeta::from_headers(lookup(m.to_headers())).unwrap(), m);
    }

    #[test]
    fn another_version_still_names_its_process() {
        let mut pairs = meta().to_headers();
        pairs[0].1 = HeaderValue::Int(99);
        let e = BatchMeta::from_headers(lookup(pairs)).unwrap_err();
        assert_eq!(
            (e.org_id, e.process_id),
            (Some(OrgId(3)), Some(ProcessId(7)))
        );
        assert!(e.reason.contains("version 99"), "{e}");
    }

    #[test]
    fn missing_pieces_are_named() {
        let pairs: Vec<_> = meta()
            .to_headers()
            .into_iter()
            .filter(|(k, _)| *k != header::KIND)
            .collect();
        let e = BatchMeta::from_headers(lookup(pairs)).unwrap_err();
        assert!(e.reason.contains("kind"), "{e}");
        let e = BatchMeta::from_headers(|_| None).unwrap_err();
        assert_eq!((e.org_id, e.process_id), (None, None));
    }
}
