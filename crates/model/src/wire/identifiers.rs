//! The small parts of a request read in full: identifiers (of a record, of
//! an association target, of a delete) and association entries.

use std::collections::HashMap;
use std::fmt::Display;

use serde_json::value::RawValue;

use super::json::{Text, duplicate, is_null, object, reason};
use super::{AssociationIn, Identifiers, LinkAction, TargetIn};
use crate::error::RequestError;
use crate::limits::{MAX_ASSOCIATED_RECORDS, MAX_ASSOCIATION_ENTRIES, MAX_EXT_ID_CHARS};
use crate::names::ObjectTypeName;

/// A short view of a raw value for messages.
pub(crate) fn shown(raw: &RawValue) -> String {
    let text = raw.get();
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// A path in the body for messages, `{0}{1}`: written out only when a
/// message needs it, so that reading a valid record formats nothing.
pub(crate) struct Joined<'a, A: Display + ?Sized>(pub(crate) &'a A, pub(crate) &'static str);

impl<A: Display + ?Sized> Display for Joined<'_, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.0, self.1)
    }
}

/// Why `raw` is not an object: a type mismatch or unreadable content.
fn not_an_object(path: &(impl Display + ?Sized), e: &serde_json::Error) -> RequestError {
    if e.is_data() {
        RequestError::invalid(format!("{path} must be a JSON object"))
    } else {
        RequestError::invalid(format!("{path} is not readable: {}", reason(e)))
    }
}

/// Reads an `identifiers` object: `id` a positive integer, `ext_id` a
/// non-empty string of at most 255 characters without NUL; nothing else,
/// no key twice. `null` (or a `null` member) means absent.
pub(crate) fn identifiers(
    path: &(impl Display + ?Sized),
    raw: Option<&RawValue>,
) -> Result<Identifiers, RequestError> {
    let Some(raw) = raw.filter(|r| !is_null(r)) else {
        return Ok(Identifiers::default());
    };
    let entries = object(raw).map_err(|e| not_an_object(path, &e))?;
    if let Some(key) = duplicate(&entries) {
        return Err(RequestError::invalid(format!("{path} has '{key}' twice")));
    }
    if let Some(key) = entries.1.first() {
        return Err(RequestError::invalid(format!(
            "{path} has an unknown key {}; use 'id' or 'ext_id'",
            shown(key)
        )));
    }
    let mut ids = Identifiers::default();
    for (key, value) in &entries.0 {
        if is_null(value) {
            continue;
        }
        match key.as_ref() {
            "id" => ids.id = Some(id(&Joined(path, ".id"), value)?),
            "ext_id" => ids.ext_id = Some(ext_id(&Joined(path, ".ext_id"), value)?),
            other => {
                return Err(RequestError::invalid(format!(
                    "{path} has an unknown key '{other}'; use 'id' or 'ext_id'"
                )));
            }
        }
    }
    Ok(ids)
}

/// A positive 64-bit integer in any JSON spelling of one (`7`, `7.0`, `7e0`);
/// `"7"` and `7.5` are not.
pub(crate) fn id(path: &(impl Display + ?Sized), raw: &RawValue) -> Result<i64, RequestError> {
    // `7.0` is the integer 7 to JSON Schema, and so to the document. The
    // raw value is valid JSON, and `integer` reads nothing but a number.
    match crate::number::integer(raw.get()) {
        Some(id) if id > 0 => Ok(id),
        _ => Err(RequestError::invalid(format!(
            "{path} must be a positive integer, got {}",
            shown(raw)
        ))),
    }
}

/// A non-empty string of at most 255 characters that PostgreSQL can store.
pub(crate) fn ext_id(
    path: &(impl Display + ?Sized),
    raw: &RawValue,
) -> Result<String, RequestError> {
    let text = match serde_json::from_str::<Text<'_>>(raw.get()) {
        Ok(Text(t)) => t,
        Err(e) if raw.get().starts_with('"') => {
            return Err(RequestError::invalid(format!(
                "{path} is not a valid string: {}",
                reason(&e)
            )));
        }
        Err(_) => {
            return Err(RequestError::invalid(format!(
                "{path} must be a string, got {}",
                shown(raw)
            )));
        }
    };
    check_ext_id(path, &text)?;
    Ok(text.into_owned())
}

/// The rules of an `ext_id` wherever one arrives (a body, a query string):
/// not empty, no NUL (PostgreSQL cannot store it), at most 255 characters.
pub fn check_ext_id(path: &(impl Display + ?Sized), text: &str) -> Result<(), RequestError> {
    if text.is_empty() {
        return Err(RequestError::invalid(format!("{path} must not be empty")));
    }
    if text.contains('\0') {
        return Err(RequestError::invalid(format!(
            "{path} must not contain the NUL character (\\u0000)"
        )));
    }
    // Byte length bounds the char count from above, so most values skip the count.
    if text.len() > MAX_EXT_ID_CHARS && text.chars().count() > MAX_EXT_ID_CHARS {
        return Err(RequestError::invalid(format!(
            "{path} must be at most {MAX_EXT_ID_CHARS} characters long"
        )));
    }
    Ok(())
}

/// Reads the `associations` array of record `at`.
pub(crate) fn associations(
    at: &(impl Display + ?Sized),
    raw: Option<&RawValue>,
) -> Result<Vec<AssociationIn>, RequestError> {
    let Some(raw) = raw.filter(|r| !is_null(r)) else {
        return Ok(Vec::new());
    };
    let items = super::json::array(raw)
        .map_err(|_| RequestError::invalid(format!("{at}.associations must be an array")))?;
    if items.len() > MAX_ASSOCIATION_ENTRIES {
        return Err(RequestError::out_of_range(format!(
            "{at} has {} association entries; at most {MAX_ASSOCIATION_ENTRIES} are allowed",
            items.len()
        )));
    }
    let mut per_target: HashMap<(ObjectTypeName, LinkAction), usize> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (j, item) in items.into_iter().enumerate() {
        let assoc = association(&format!("{at}.associations[{j}]"), item)?;
        let count = per_target
            .entry((assoc.object_type.clone(), assoc.action))
            .or_default();
        *count += assoc.records.len();
        if *count > MAX_ASSOCIATED_RECORDS {
            return Err(RequestError::out_of_range(format!(
                "{at} names more than {MAX_ASSOCIATED_RECORDS} records to {} for object type '{}'",
                assoc.action.as_str(),
                assoc.object_type
            )));
        }
        out.push(assoc);
    }
    Ok(out)
}

fn association(path: &str, raw: &RawValue) -> Result<AssociationIn, RequestError> {
    let entries = object(raw).map_err(|e| not_an_object(path, &e))?;
    if let Some(key) = duplicate(&entries) {
        return Err(RequestError::invalid(format!("{path} has '{key}' twice")));
    }
    let field = |name: &str| {
        entries
            .0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
            .filter(|v| !is_null(v))
    };
    let object_type = match field("object_type").map(|r| serde_json::from_str::<Text<'_>>(r.get()))
    {
        Some(Ok(Text(name))) => ObjectTypeName::parse(name.as_ref()).map_err(|e| {
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
    let action = match field("action").map(|r| serde_json::from_str::<Text<'_>>(r.get())) {
        None => LinkAction::Link,
        Some(Ok(Text(a))) if a == "link" => LinkAction::Link,
        Some(Ok(Text(a))) if a == "unlink" => LinkAction::Unlink,
        Some(_) => {
            return Err(RequestError::invalid(format!(
                "{path}.action must be \"link\" or \"unlink\""
            )));
        }
    };
    let targets = field("records")
        .and_then(|r| super::json::array(r).ok())
        .ok_or_else(|| RequestError::invalid(format!("{path}.records must be an array")))?;
    let mut records = Vec::with_capacity(targets.len());
    for (k, target) in targets.into_iter().enumerate() {
        let tpath = format!("{path}.records[{k}]");
        let t = object(target).map_err(|e| not_an_object(&tpath, &e))?;
        if let Some(key) = duplicate(&t) {
            return Err(RequestError::invalid(format!("{tpath} has '{key}' twice")));
        }
        let raw_ids =
            t.0.iter()
                .find(|(k, _)| k == "identifiers")
                .map(|(_, v)| *v);
        let ids = identifiers(&format!("{tpath}.identifiers"), raw_ids)?;
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
