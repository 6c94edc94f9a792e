//! The upsert and delete batches as the API receives them, with every
//! request-level check of the contract (SPEC §4.1).
//!
//! These checks decide whether a batch is accepted at all, so they cover only
//! what can be judged without the database: shapes, counts and identifiers.
//! Attribute values are judged per record by the worker, against the schema
//! of the moment, so that one bad value rejects one record, not the batch.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::RequestError;
use crate::limits::MAX_DELETES_PER_BATCH;
use crate::names::ObjectTypeName;

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

/// One target of an association entry: `{"identifiers": {"id" | "ext_id"}}`,
/// exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetIn {
    pub identifiers: Identifiers,
}

/// One association entry of a record: link it to (or unlink it from) records
/// of another type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssociationIn {
    pub object_type: ObjectTypeName,
    #[serde(default, deserialize_with = "null_as_default")]
    pub action: LinkAction,
    pub records: Vec<TargetIn>,
}

/// Reads `null` as the default, as the request checks accept it.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One record of an upsert batch, shape-checked. It (de)serializes in the
/// API's own shape, which is also the message's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordIn {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Identifiers::is_empty"
    )]
    pub identifiers: Identifiers,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attributes: Map<String, Value>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub associations: Vec<AssociationIn>,
}

/// The body of `POST /v3/objects/{object_type}/batch/upsert`, accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpsertBatch {
    pub records: Vec<RecordIn>,
}

pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, RequestError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(RequestError::bad_request("the body must be a JSON object")),
        Err(e) => Err(RequestError::bad_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

impl UpsertBatch {
    /// Parses a request body and applies every request-level check, in the
    /// order the contract lists them (see [`RawUpsert`], which ingest uses to
    /// pass the records on without rebuilding them).
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        Self::from_raw(RawUpsert::parse(body)?)
    }

    /// Builds the records of a body that already passed the checks.
    pub fn from_raw(raw: RawUpsert<'_>) -> Result<Self, RequestError> {
        let records = serde_json::from_str(raw.records.get())
            .map_err(|e| RequestError::bad_request(format!("records: {e}")))?;
        Ok(Self { records })
    }
}

/// The identifiers of a delete batch: our ids or the producer's ext_ids,
/// never both in one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteBatch {
    Ids(Vec<i64>),
    ExtIds(Vec<String>),
}

impl DeleteBatch {
    /// Parses `{"identifiers": {"ids": [...]}}` or `{"identifiers": {"ext_ids": [...]}}`.
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        let mut obj = parse_object(body)?;
        let mut ids = match obj.remove("identifiers") {
            Some(Value::Object(ids)) => ids,
            None | Some(Value::Null) => {
                return Err(RequestError::new(
                    crate::error::ApiCode::MissingParameter,
                    "the body must have an 'identifiers' object with 'ids' or 'ext_ids'",
                ));
            }
            Some(_) => return Err(RequestError::invalid("'identifiers' must be a JSON object")),
        };
        if let Some(other) = ids.keys().find(|k| *k != "ids" && *k != "ext_ids") {
            return Err(RequestError::invalid(format!(
                "identifiers has an unknown key '{other}'; use 'ids' or 'ext_ids'"
            )));
        }
        let batch = match (ids.remove("ids"), ids.remove("ext_ids")) {
            (Some(_), Some(_)) => {
                return Err(RequestError::invalid(
                    "identifiers must hold 'ids' or 'ext_ids', not both",
                ));
            }
            (Some(Value::Array(items)), None) => Self::Ids(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| parse_id(&format!("identifiers.ids[{i}]"), v))
                    .collect::<Result<_, _>>()?,
            ),
            (None, Some(Value::Array(items))) => Self::ExtIds(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| parse_ext_id(&format!("identifiers.ext_ids[{i}]"), v))
                    .collect::<Result<_, _>>()?,
            ),
            (None, None) => {
                return Err(RequestError::new(
                    crate::error::ApiCode::MissingParameter,
                    "identifiers must hold 'ids' or 'ext_ids'",
                ));
            }
            _ => return Err(RequestError::invalid("'ids' / 'ext_ids' must be an array")),
        };
        let len = batch.len();
        if len == 0 || len > MAX_DELETES_PER_BATCH {
            return Err(RequestError::out_of_range(format!(
                "a delete batch must name 1 to {MAX_DELETES_PER_BATCH} records, got {len}"
            )));
        }
        Ok(batch)
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Ids(v) => v.len(),
            Self::ExtIds(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

mod checks;
mod raw;

use checks::{parse_ext_id, parse_id};
#[cfg(test)]
mod tests;

pub use raw::RawUpsert;
