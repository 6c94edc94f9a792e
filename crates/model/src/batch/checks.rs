//! Checks of the small parts of a record: identifiers and association
//! entries. Attribute values are not judged here (see the module docs of
//! `batch`).

use std::collections::HashMap;

use serde_json::Value;

use super::{AssociationIn, Identifiers, LinkAction, TargetIn};
use crate::error::RequestError;
use crate::limits::{MAX_ASSOCIATED_RECORDS, MAX_ASSOCIATION_ENTRIES, MAX_EXT_ID_CHARS};
use crate::names::ObjectTypeName;

pub(super) fn parse_associations(
    at: &str,
    value: Option<Value>,
) -> Result<Vec<AssociationIn>, RequestError> {
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
        records.push(TargetIn { identifiers: ids });
    }
    Ok(AssociationIn {
        object_type,
        action,
        records,
    })
}

/// Checks an `identifiers` object: `id` a positive integer, `ext_id` a
/// non-empty string of at most 255 characters; nothing else.
pub(super) fn parse_identifiers(
    path: &str,
    value: Option<Value>,
) -> Result<Identifiers, RequestError> {
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

pub(super) fn parse_id(path: &str, value: &Value) -> Result<i64, RequestError> {
    match value.as_i64() {
        Some(id) if id > 0 => Ok(id),
        _ => Err(RequestError::invalid(format!(
            "{path} must be a positive integer, got {value}"
        ))),
    }
}

pub(super) fn parse_ext_id(path: &str, value: Value) -> Result<String, RequestError> {
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
