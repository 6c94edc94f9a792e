//! The bodies the admin API reads, as the types its handlers deserialize:
//! the OpenAPI document's request schemas are derived from these same
//! types, so what the document says and what the server reads cannot part.
//!
//! Every body is read strictly, straight from its bytes (not through a
//! `serde_json::Value`, which would keep the last of two equal keys): a key
//! the type does not have, or a key given twice, is a `400` naming it — as
//! the document's `additionalProperties: false` says — instead of being
//! silently dropped.

use std::fmt;

use objectsync_model::{ApiCode, AttributeDef, ObjectTypeName};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};

/// A new organization.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrg {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub(crate) name: String,
    /// Default true.
    #[serde(default)]
    pub(crate) custom_objects_enabled: Option<bool>,
}

/// A definition to store.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefinitionIn {
    #[schema(min_length = 1, max_length = 255)]
    pub(crate) label: String,
    /// The first is the primary attribute and must be of type text.
    #[schema(min_items = 1, max_items = 500)]
    pub(crate) attributes: Vec<AttributeDef>,
    /// Left out keeps the stored associations; a list replaces them.
    #[schema(max_items = 10)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) associations: Option<Vec<ObjectTypeName>>,
}

/// An organization's own limits; a field left out or `null` takes the
/// default.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsIn {
    /// Batch requests per second: 0 (no limit), or 0.001 to 1,000,000.
    #[schema(minimum = 0, maximum = 1_000_000)]
    #[serde(default)]
    pub(crate) writes_per_second: Option<f64>,
    /// Batch requests at once after a quiet spell: 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(default)]
    pub(crate) writes_burst: Option<f64>,
    /// Read requests per second: 0 (no limit), or 0.001 to 1,000,000.
    #[schema(minimum = 0, maximum = 1_000_000)]
    #[serde(default)]
    pub(crate) reads_per_second: Option<f64>,
    /// Read requests at once: 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(default)]
    pub(crate) reads_burst: Option<f64>,
    /// Open processes before new batches get 429 (0: no cap). Any JSON
    /// spelling of an integer (`5`, `5.0`, `5e0`).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 2_147_483_647)]
    #[serde(default, deserialize_with = "whole_number")]
    pub(crate) max_open_processes: Option<i64>,
}

/// Why an operator fails a process.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FailIn {
    /// Why; the client reads "failed by an operator: " and this in the
    /// process's `info.error`.
    #[schema(min_length = 1, max_length = 1000)]
    pub(crate) reason: String,
    /// Who fails it, kept with the process; default "admin API".
    #[schema(min_length = 1, max_length = 64)]
    #[serde(default)]
    pub(crate) operator: Option<String>,
}

/// An integer in any JSON spelling: JSON Schema's `integer` is a value, so
/// `5.0` is one, and a client whose numbers are all doubles may send it.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Whole;
    impl Visitor<'_> for Whole {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(i64::try_from(v).unwrap_or(i64::MAX)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // Beyond 2^63 the value is out of every range it is checked
            // against; saturating keeps it so.
            if v.fract() == 0.0 {
                Ok(Some(v as i64))
            } else {
                Err(E::custom(format!("must be a whole number, got {v}")))
            }
        }
    }
    d.deserialize_any(Whole)
}

/// Reads a body as `T`, strictly; a missing field gets `missing`.
pub(crate) fn read<T: DeserializeOwned>(bytes: &[u8], missing: ApiCode) -> ApiResult<T> {
    // serde also reads a struct from an array of its fields; the document
    // says object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(_) => ApiError::new(ApiCode::BadRequest, "the body must be a JSON object"),
            Err(e) => ApiError::new(
                ApiCode::BadRequest,
                format!("the body is not valid JSON: {e}"),
            ),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| refusal(&e, missing))?;
    de.end().map_err(|e| {
        ApiError::new(
            ApiCode::BadRequest,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// The `400` for a body `read` refused, naming the field.
fn refusal(e: &serde_path_to_error::Error<serde_json::Error>, missing: ApiCode) -> ApiError {
    let inner = e.inner();
    if !inner.is_data() {
        return ApiError::new(
            ApiCode::BadRequest,
            format!("the body is not valid JSON: {inner}"),
        );
    }
    let path = e.path().to_string();
    let at = if path == "." { String::new() } else { path };
    // serde_json's position counts within the body; the path says more.
    let full = inner.to_string();
    let text = full
        .rfind(" at line ")
        .map_or(full.as_str(), |i| &full[..i]);
    // The path may or may not end with the field the message quotes.
    let quoted = |prefix: &str| {
        let field = text.strip_prefix(prefix)?.split('`').next()?;
        Some(if at.is_empty() || at == field {
            field.to_owned()
        } else if at.ends_with(&format!(".{field}")) {
            at.clone()
        } else {
            format!("{at}.{field}")
        })
    };
    if let Some(field) = quoted("missing field `") {
        return ApiError::new(missing, format!("{field}: is required"));
    }
    if let Some(field) = quoted("unknown field `") {
        return ApiError::invalid(format!("{field}: is not a field of this body ({text})"));
    }
    if let Some(field) = quoted("duplicate field `") {
        return ApiError::invalid(format!("{field}: is given twice"));
    }
    ApiError::invalid(format!(
        "{}: {text}",
        if at.is_empty() { "body" } else { &at }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused<T: DeserializeOwned>(body: &str) -> ApiError {
        read::<T>(body.as_bytes(), ApiCode::MissingParameter)
            .err()
            .unwrap_or_else(|| panic!("{body} was read"))
    }

    #[test]
    fn unknown_and_repeated_keys_are_refused_by_name() {
        let e = refused::<NewOrg>(r#"{"name": "A", "plan": 1}"#);
        assert!(
            e.message.starts_with("plan: is not a field"),
            "{}",
            e.message
        );
        let e = refused::<NewOrg>(r#"{"name": "A", "name": "B"}"#);
        assert_eq!(e.message, "name: is given twice");
        let e = refused::<DefinitionIn>(
            r#"{"label": "V", "attributes": [{"key": "n", "label": "N", "type": "text", "x": 1}]}"#,
        );
        assert!(e.message.starts_with("attributes[0].x:"), "{}", e.message);
        let e = refused::<FailIn>("{}");
        assert_eq!(
            (e.code, e.message.as_str()),
            (ApiCode::MissingParameter, "reason: is required")
        );
    }

    #[test]
    fn only_an_object_is_a_body() {
        assert_eq!(
            refused::<NewOrg>(r#"["A", true]"#).code,
            ApiCode::BadRequest
        );
        assert_eq!(
            refused::<NewOrg>(r#"{"name": "A"} x"#).code,
            ApiCode::BadRequest
        );
        assert_eq!(refused::<NewOrg>("{oops").code, ApiCode::BadRequest);
    }

    #[test]
    fn a_whole_number_in_any_spelling() {
        for body in [
            r#"{"max_open_processes": 392190}"#,
            r#"{"max_open_processes": 392190.0}"#,
        ] {
            let l: LimitsIn = read(body.as_bytes(), ApiCode::InvalidParameter).unwrap();
            assert_eq!(l.max_open_processes, Some(392_190));
        }
        let e = refused::<LimitsIn>(r#"{"max_open_processes": 2.5}"#);
        assert!(
            e.message.starts_with("max_open_processes:"),
            "{}",
            e.message
        );
    }
}
