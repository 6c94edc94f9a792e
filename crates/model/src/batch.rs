//! The upsert and delete batches as the API receives them, with every
//! request-level check of the contract (SPEC §4.1).
//!
//! These checks decide whether a batch is accepted at all, so they cover only
//! what can be judged without the database: shapes, counts and identifiers.
//! Attribute values are judged per record by the worker, against the schema
//! of the moment, so that one bad value rejects one record, not the batch.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::RequestError;
use crate::limits::{
    MAX_ASSOCIATED_RECORDS, MAX_ASSOCIATION_ENTRIES, MAX_ATTRIBUTES, MAX_DELETES_PER_BATCH,
    MAX_EXT_ID_CHARS, MAX_RECORDS_PER_BATCH,
};
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

/// One association entry of a record: link it to (or unlink it from) records
/// of another type. Each target carries exactly one of `id` or `ext_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssociationIn {
    pub object_type: ObjectTypeName,
    #[serde(default)]
    pub action: LinkAction,
    pub records: Vec<Identifiers>,
}

/// One record of an upsert batch, shape-checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordIn {
    #[serde(default, skip_serializing_if = "Identifiers::is_empty")]
    pub identifiers: Identifiers,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub associations: Vec<AssociationIn>,
}

/// The body of `POST /v3/objects/{object_type}/batch/upsert`, accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpsertBatch {
    pub records: Vec<RecordIn>,
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, RequestError> {
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
    /// order the contract lists them.
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        let mut obj = parse_object(body)?;
        let items = match obj.remove("records") {
            Some(Value::Array(items)) => items,
            None => {
                return Err(RequestError::bad_request(
                    "the body must have a 'records' array",
                ));
            }
            Some(_) => return Err(RequestError::bad_request("'records' must be an array")),
        };
        if items.is_empty() || items.len() > MAX_RECORDS_PER_BATCH {
            return Err(RequestError::out_of_range(format!(
                "'records' must hold 1 to {MAX_RECORDS_PER_BATCH} records, got {}",
                items.len()
            )));
        }
        let records = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| parse_record(i, item))
            .collect::<Result<_, _>>()?;
        Ok(Self { records })
    }
}

fn parse_record(index: usize, item: Value) -> Result<RecordIn, RequestError> {
    let at = format!("records[{index}]");
    let Value::Object(mut obj) = item else {
        return Err(RequestError::invalid(format!("{at} must be a JSON object")));
    };
    let attributes = match obj.remove("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(RequestError::invalid(format!(
                "{at}.attributes must be a JSON object"
            )));
        }
    };
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(RequestError::out_of_range(format!(
            "{at} has {} attributes; at most {MAX_ATTRIBUTES} are allowed",
            attributes.len()
        )));
    }
    let associations = parse_associations(&at, obj.remove("associations"))?;
    let identifiers = parse_identifiers(&format!("{at}.identifiers"), obj.remove("identifiers"))?;
    Ok(RecordIn {
        identifiers,
        attributes,
        associations,
    })
}

fn parse_associations(at: &str, value: Option<Value>) -> Result<Vec<AssociationIn>, RequestError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(RequestError::invalid(format!(
                "{at}.associations must be an array"
            )));
        }
    };
    if items.len() > MAX_ASSOCIATION_ENTRIES {
        return Err(RequestError::out_of_range(format!(
            "{at} has {} association entries; at most {MAX_ASSOCIATION_ENTRIES} are allowed",
            items.len()
        )));
    }
    let mut per_target: HashMap<(ObjectTypeName, LinkAction), usize> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (j, item) in items.into_iter().enumerate() {
        let path = format!("{at}.associations[{j}]");
        let assoc = parse_association(&path, item)?;
        let count = per_target
            .entry((assoc.object_type.clone(), assoc.action))
            .or_default();
        *count += assoc.records.len();
        if *count > MAX_ASSOCIATED_RECORDS {
            return Err(RequestError::out_of_range(format!(
                "{at} names more than {MAX_ASSOCIATED_RECORDS} records to {} for object type '{}'",
                match assoc.action {
                    LinkAction::Link => "link",
                    LinkAction::Unlink => "unlink",
                },
                assoc.object_type
            )));
        }
        out.push(assoc);
    }
    Ok(out)
}

fn parse_association(path: &str, item: Value) -> Result<AssociationIn, RequestError> {
    let Value::Object(mut obj) = item else {
        return Err(RequestError::invalid(format!(
            "{path} must be a JSON object"
        )));
    };
    let object_type = match obj.remove("object_type") {
        Some(Value::String(s)) => ObjectTypeName::parse(s).map_err(|e| {
            RequestError::invalid(format!(
                "{path}.object_type is not a valid object type: {e}"
            ))
        })?,
        _ => {
            return Err(RequestError::invalid(format!(
                "{path}.object_type must be an object type name"
            )));
        }
    };
    let action = match obj.remove("action") {
        None | Some(Value::Null) => LinkAction::Link,
        Some(Value::String(s)) if s == "link" => LinkAction::Link,
        Some(Value::String(s)) if s == "unlink" => LinkAction::Unlink,
        Some(_) => {
            return Err(RequestError::invalid(format!(
                "{path}.action must be \"link\" or \"unlink\""
            )));
        }
    };
    let targets = match obj.remove("records") {
        Some(Value::Array(items)) => items,
        _ => {
            return Err(RequestError::invalid(format!(
                "{path}.records must be an array"
            )));
        }
    };
    let mut records = Vec::with_capacity(targets.len());
    for (k, target) in targets.into_iter().enumerate() {
        let tpath = format!("{path}.records[{k}]");
        let ids = match target {
            Value::Object(mut t) => {
                parse_identifiers(&format!("{tpath}.identifiers"), t.remove("identifiers"))?
            }
            _ => {
                return Err(RequestError::invalid(format!(
                    "{tpath} must be a JSON object"
                )));
            }
        };
        if ids.id.is_some() == ids.ext_id.is_some() {
            return Err(RequestError::invalid(format!(
                "{tpath}.identifiers must hold exactly one of 'id' or 'ext_id'"
            )));
        }
        records.push(ids);
    }
    Ok(AssociationIn {
        object_type,
        action,
        records,
    })
}

/// Checks an `identifiers` object: `id` a positive integer, `ext_id` a
/// non-empty string of at most 255 characters; nothing else.
fn parse_identifiers(path: &str, value: Option<Value>) -> Result<Identifiers, RequestError> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(Identifiers::default()),
        Some(Value::Object(obj)) => obj,
        Some(_) => {
            return Err(RequestError::invalid(format!(
                "{path} must be a JSON object"
            )));
        }
    };
    let mut ids = Identifiers::default();
    for (key, value) in obj {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("id", v) => ids.id = Some(parse_id(&format!("{path}.id"), &v)?),
            ("ext_id", v) => ids.ext_id = Some(parse_ext_id(&format!("{path}.ext_id"), v)?),
            (other, _) => {
                return Err(RequestError::invalid(format!(
                    "{path} has an unknown key '{other}'; use 'id' or 'ext_id'"
                )));
            }
        }
    }
    Ok(ids)
}

fn parse_id(path: &str, value: &Value) -> Result<i64, RequestError> {
    match value.as_i64() {
        Some(id) if id > 0 => Ok(id),
        _ => Err(RequestError::invalid(format!(
            "{path} must be a positive integer, got {value}"
        ))),
    }
}

fn parse_ext_id(path: &str, value: Value) -> Result<String, RequestError> {
    match value {
        Value::String(s) if s.is_empty() => {
            Err(RequestError::invalid(format!("{path} must not be empty")))
        }
        Value::String(s) if s.contains('\0') => Err(RequestError::invalid(format!(
            "{path} must not contain the NUL character (\\u0000)"
        ))),
        Value::String(s) if s.len() > MAX_EXT_ID_CHARS && s.chars().count() > MAX_EXT_ID_CHARS => {
            Err(RequestError::invalid(format!(
                "{path} must be at most {MAX_EXT_ID_CHARS} characters long"
            )))
        }
        Value::String(s) => Ok(s),
        other => Err(RequestError::invalid(format!(
            "{path} must be a string, got {other}"
        ))),
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

#[cfg(test)]
mod tests;
