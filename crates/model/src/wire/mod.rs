//! The wire format of the public API's batch bodies, read by one set of
//! functions that both ingest and the worker call.
//!
//! Ingest decides between a 4xx and a `202` by calling [`Upsert::decode`]
//! (or [`DeleteBatch::decode`]) on the request body; it then publishes that
//! body verbatim, and the worker calls the same function on the same bytes.
//! So whatever ingest accepts, the worker can read, by construction.
//!
//! What is refused where (Brevo answers shape errors with 400 and value
//! errors per record):
//! - **400, nothing queued** — the body is not UTF-8 JSON, not an object, or
//!   has no `records` array; a record, its `identifiers`, `attributes` or an
//!   association entry is not an object, or has a key twice; identifiers or
//!   association entries are malformed; a count is over its limit
//!   (`out_of_range`).
//! - **per record, at apply time** — an attribute value that does not fit
//!   its type, including values no JSON reader can hold (`1e400`, a lone
//!   surrogate `"\ud800"`, nesting deeper than 128 levels): the record is
//!   rejected with `invalid_attribute_value` and the rest of the batch is
//!   applied. Keys the type does not define are ignored without being read.

mod delete;
mod footprint;
mod identifiers;
mod json;
mod upsert;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use delete::DeleteBatch;
pub use footprint::{Footprint, record_key};
pub use identifiers::check_ext_id;
pub(crate) use json::reason;
pub use upsert::{RecordIn, Upsert};

use crate::error::RequestError;
use crate::process::ProcessKind;

/// How a record is named: by our `id`, by the producer's `ext_id`, by both,
/// or (on create) by neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifiers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_id: Option<String>,
}

impl Identifiers {
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.ext_id.is_none()
    }
}

/// Whether an association entry adds or removes links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkAction {
    #[default]
    Link,
    Unlink,
}

impl LinkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Unlink => "unlink",
        }
    }
}

/// One target of an association entry: exactly one of `id` and `ext_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetIn {
    pub identifiers: Identifiers,
}

/// One association entry of a record: link it to (or unlink it from) records
/// of another type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssociationIn {
    pub object_type: crate::names::ObjectTypeName,
    pub action: LinkAction,
    pub records: Vec<TargetIn>,
}

/// A decoded batch, as the worker applies it.
#[derive(Debug, Clone)]
pub enum Job<'a> {
    Upsert(Upsert<'a>),
    Delete(DeleteBatch),
}

impl<'a> Job<'a> {
    /// Reads a body of the given kind with the one reader of that kind.
    pub fn decode(kind: ProcessKind, body: &'a [u8]) -> Result<Self, RequestError> {
        Ok(match kind {
            ProcessKind::Upsert => Self::Upsert(Upsert::decode(body)?),
            ProcessKind::Delete => Self::Delete(DeleteBatch::decode(body)?),
        })
    }

    /// How many records the batch names.
    pub fn len(&self) -> usize {
        match self {
            Self::Upsert(b) => b.records.len(),
            Self::Delete(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kind(&self) -> ProcessKind {
        match self {
            Self::Upsert(_) => ProcessKind::Upsert,
            Self::Delete(_) => ProcessKind::Delete,
        }
    }

    /// What the request asks for, independent of its JSON spelling (key
    /// order, whitespace): the same request sent twice fingerprints the
    /// same, which is what an `Idempotency-Key` compares.
    pub fn fingerprint(&self) -> Value {
        match self {
            Self::Delete(d) => serde_json::to_value(d).unwrap_or(Value::Null),
            Self::Upsert(u) => Value::Array(
                u.records
                    .iter()
                    .map(|r| {
                        let attributes: serde_json::Map<String, Value> = r
                            .attributes
                            .iter()
                            .map(|(k, raw)| {
                                // Tagged, so that an unreadable value and a
                                // string of the same text stay different.
                                let v = match serde_json::from_str::<Value>(raw.get()) {
                                    Ok(v) => serde_json::json!([true, v]),
                                    Err(_) => serde_json::json!([false, raw.get()]),
                                };
                                (k.to_string(), v)
                            })
                            .collect();
                        serde_json::json!([r.identifiers, attributes, r.associations])
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
