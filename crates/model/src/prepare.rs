//! Judging one record's attributes against its object type, as the worker
//! does before anything is written.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::schema::{AttributeDef, AttributeType, ObjectType};
use crate::value::{check_value, plain_str_accepted};

/// A record refused for a bad attribute value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute '{key}': {message}")]
pub struct AttributeError {
    pub key: String,
    pub message: String,
}

/// A checked attribute value: the JSON text as sent when it needs no
/// change (written to the database as is), or its normalized form.
#[derive(Debug, Clone)]
pub enum Checked<'r> {
    Raw(&'r RawValue),
    Normalized(Value),
}

impl Checked<'_> {
    /// `null`: clears the stored value.
    pub fn is_null(&self) -> bool {
        match self {
            Self::Raw(raw) => raw.get() == "null",
            Self::Normalized(v) => v.is_null(),
        }
    }
}

impl PartialEq for Checked<'_> {
    /// The same JSON text (as written to the database).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Normalized(a), Self::Normalized(b)) => a == b,
            _ => serde_json::to_string(self).ok() == serde_json::to_string(other).ok(),
        }
    }
}

impl serde::Serialize for Checked<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Raw(raw) => raw.serialize(s),
            Self::Normalized(v) => v.serialize(s),
        }
    }
}

/// A record's checked attributes, keyed by borrowed names.
pub type Attributes<'r> = BTreeMap<&'r str, Checked<'r>>;

/// Why a raw value could not be read at all, in a client's words.
fn unreadable(e: &serde_json::Error) -> String {
    let reason = crate::wire::reason(e);
    let why = if reason.contains("recursion limit") {
        "it is nested more than 128 levels deep".to_owned()
    } else if reason.contains("out of range") {
        "it is a number too large to store".to_owned()
    } else if reason.contains("escape") || reason.contains("surrogate") {
        "it holds a string escape that is not valid Unicode".to_owned()
    } else {
        reason
    };
    format!("the value cannot be stored: {why}")
}

/// Whether `raw` is stored exactly as sent, decided from its text without
/// reading it into a [`Value`]: `null`, a boolean or a number of its type,
/// a string without escapes that its type accepts as is. `false` means
/// "read it and check it".
fn plainly_accepted(def: &AttributeDef, raw: &str) -> bool {
    match raw.as_bytes().first() {
        Some(b'n') => raw == "null",
        Some(b't' | b'f') => def.kind == AttributeType::Boolean,
        Some(b'-' | b'0'..=b'9') => {
            def.kind == AttributeType::Number && crate::number::check_exact(raw).is_ok()
        }
        Some(b'"') if !raw.contains('\\') => plain_str_accepted(def, &raw[1..raw.len() - 1]),
        _ => false,
    }
}

/// Keeps the attributes the type defines, read and normalized, and skips
/// the others without reading them. `null` values are kept: they clear the
/// stored value on merge.
///
/// The first bad value rejects the whole record, so a stored record never
/// holds half an update.
pub fn check_attributes<'r>(
    object_type: &ObjectType,
    attributes: &'r [(Cow<'_, str>, &'r RawValue)],
) -> Result<Attributes<'r>, AttributeError> {
    let mut out = Attributes::new();
    for (key, raw) in attributes {
        let Some(def) = object_type.attribute(key) else {
            continue;
        };
        if plainly_accepted(def, raw.get()) {
            out.insert(key.as_ref(), Checked::Raw(raw));
            continue;
        }
        let fail = |message: String| AttributeError {
            key: key.to_string(),
            message,
        };
        let value: Value = serde_json::from_str(raw.get()).map_err(|e| fail(unreadable(&e)))?;
        if value.is_number() {
            // Stored as sent, read back as a 64-bit integer or a double.
            crate::number::check_exact(raw.get()).map_err(|e| fail(e.0))?;
        }
        let checked = match check_value(def, &value).map_err(|e| fail(e.0))? {
            Cow::Borrowed(_) => Checked::Raw(raw),
            Cow::Owned(v) => Checked::Normalized(v),
        };
        out.insert(key.as_ref(), checked);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::ObjectTypeName;
    use crate::schema::DefinitionInput;
    use crate::wire::Upsert;
    use serde_json::json;

    fn vehicle() -> ObjectType {
        let def = DefinitionInput::from_json(&json!({"label": "V", "attributes": [
            {"key": "name", "label": "Name", "type": "text"},
            {"key": "price", "label": "Price", "type": "number"},
            {"key": "when", "label": "When", "type": "date"}
        ]}))
        .unwrap();
        ObjectType::new(
            crate::ids::TypeId(1),
            ObjectTypeName::parse("vehicle").unwrap(),
            def.label,
            def.attributes,
            vec![],
        )
    }

    fn check(body: &str) -> Result<Value, AttributeError> {
        let batch = Upsert::decode(body.as_bytes()).unwrap();
        check_attributes(&vehicle(), &batch.records[0].attributes)
            .map(|a| serde_json::to_value(&a).unwrap())
    }

    #[test]
    fn the_short_path_accepts_only_what_reading_keeps_as_sent() {
        let def = |kind: AttributeType| crate::schema::AttributeDef {
            key: crate::names::AttributeKey::parse("a").unwrap(),
            label: "A".into(),
            kind,
            options: vec![crate::schema::CategoryOption {
                key: "red".into(),
                label: "Red".into(),
            }],
        };
        let long = format!("\"{}\"", "é".repeat(crate::limits::MAX_TEXT_CHARS + 1));
        let raws = [
            "null",
            "true",
            "false",
            "0",
            "-1",
            "1.5",
            "1e400",
            "1e-400",
            "0.1000000000000000055511",
            "123456789012345678901234567890",
            "\"\"",
            "\"red\"",
            "\"Red\"",
            "\"x\"",
            "\"https://example.com/a\"",
            "\"ftp://example.com\"",
            "\"example.com\"",
            "\"2024-06-15\"",
            "\"0000-01-01\"",
            "\"2024-02-30\"",
            "\"2024-06-15T10:00:00Z\"",
            "\"2024-06-15T10:00:00+02:00\"",
            "\"a\\u0000b\"",
            "\"a\\nb\"",
            "[\"red\"]",
            "[]",
            "{}",
            &long,
        ];
        use AttributeType::*;
        for kind in [Text, Number, Boolean, Date, Url, Category, MultipleCategory] {
            let def = def(kind);
            for raw in raws {
                if !plainly_accepted(&def, raw) {
                    continue;
                }
                let value: Value = serde_json::from_str(raw).unwrap();
                if value.is_number() {
                    assert!(crate::number::check_exact(raw).is_ok(), "{kind:?} {raw}");
                }
                assert!(
                    matches!(check_value(&def, &value), Ok(Cow::Borrowed(_))),
                    "{kind:?} {raw} taken as sent"
                );
            }
        }
    }

    #[test]
    fn drops_unknown_keys_and_keeps_nulls() {
        let out = check(
            r#"{"records":[{"attributes":{"name":"A","price":null,"colour":1e400,
            "when":"2024-06-15T10:00:00+02:00"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"name": "A", "price": null, "when": "2024-06-15T08:00:00Z"})
        );
    }

    #[test]
    fn names_the_bad_key() {
        let e = check(r#"{"records":[{"attributes":{"name":"A","price":"12"}}]}"#).unwrap_err();
        assert_eq!(e.key, "price");
        assert!(
            e.to_string()
                .starts_with("attribute 'price': expected a number")
        );
    }

    #[test]
    fn numbers_that_would_come_back_otherwise_reject_the_record() {
        for (literal, back) in [
            ("1e-400", "0.0"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
            ("-9223372036854775809", "-9.223372036854776e+18"),
        ] {
            let body =
                format!(r#"{{"records":[{{"attributes":{{"name":"A","price":{literal}}}}}]}}"#);
            let e = check(&body).unwrap_err();
            assert_eq!(e.key, "price");
            assert!(e.message.contains(&format!("returned as {back}")), "{e}");
        }
        let out = check(r#"{"records":[{"attributes":{"price":0.1,"colour":1e-400}}]}"#).unwrap();
        assert_eq!(out, json!({"price": 0.1}));
    }

    #[test]
    fn values_no_reader_can_hold_reject_the_record() {
        for (body, says) in [
            (
                r#"{"records":[{"attributes":{"price":1e400}}]}"#,
                "too large",
            ),
            (
                r#"{"records":[{"attributes":{"name":"a\ud800b"}}]}"#,
                "Unicode",
            ),
            (
                &format!(
                    r#"{{"records":[{{"attributes":{{"name":{}1{}}}}}]}}"#,
                    "[".repeat(200),
                    "]".repeat(200)
                ),
                "128 levels",
            ),
        ] {
            let e = check(body).unwrap_err();
            assert!(e.message.contains(says), "{body}: {e}");
        }
    }
}
