//! Object type definitions: the attributes a type has and the types it may be
//! associated with.
//!
//! Definitions arrive as JSON through the admin API and are parsed by hand
//! rather than by `serde` derive so that every refusal names the exact field
//! (`attributes[3].options[0].key`), which is what an operator fixing a
//! definition needs.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::TypeId;
use crate::limits::{MAX_ATTRIBUTES, MAX_LABEL_CHARS, MAX_TYPE_ASSOCIATIONS};
use crate::names::{AttributeKey, ObjectTypeName};

/// The seven attribute types and the JSON each accepts (see `value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AttributeType {
    Text,
    Number,
    Boolean,
    Date,
    Url,
    Category,
    MultipleCategory,
}

impl AttributeType {
    const ALL: [(&'static str, AttributeType); 7] = [
        ("text", Self::Text),
        ("number", Self::Number),
        ("boolean", Self::Boolean),
        ("date", Self::Date),
        ("url", Self::Url),
        ("category", Self::Category),
        ("multiple_category", Self::MultipleCategory),
    ];

    /// The wire name of the type.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("text", |(n, _)| n)
    }

    /// Parses the wire name of a type.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// Whether values must be one of the attribute's options.
    pub fn has_options(self) -> bool {
        matches!(self, Self::Category | Self::MultipleCategory)
    }
}

/// One allowed value of a category attribute. Records carry the `key`.
/// Unknown fields are refused, as everywhere in an admin body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategoryOption {
    pub key: String,
    pub label: String,
}

/// One attribute of an object type. Unknown fields are refused, as
/// everywhere in an admin body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttributeDef {
    pub key: AttributeKey,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<CategoryOption>,
}

impl AttributeDef {
    /// Whether `key` is one of this attribute's option keys.
    pub fn has_option(&self, key: &str) -> bool {
        self.options.iter().any(|o| o.key == key)
    }
}

/// A validated definition as sent to `PUT .../objects/{object_type}`.
///
/// `associations` is `None` when the request left the field out, which keeps
/// the associations already stored; a list replaces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionInput {
    pub label: String,
    pub attributes: Vec<AttributeDef>,
    pub associations: Option<Vec<ObjectTypeName>>,
}

/// A refused definition: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn label(obj: &Map<String, Value>, field: &str, path: &str) -> Result<String, FieldError> {
    let path = format!("{path}{field}");
    match obj.get(field) {
        None | Some(Value::Null) => Err(FieldError::new(path, "is required")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(FieldError::new(path, "must not be empty"))
        }
        Some(Value::String(s)) if s.chars().count() > MAX_LABEL_CHARS => Err(FieldError::new(
            path,
            format!("must be at most {MAX_LABEL_CHARS} characters long"),
        )),
        Some(Value::String(s)) if s.contains('\0') => {
            Err(FieldError::new(path, "must not contain the NUL character"))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(FieldError::new(path, "must be a string")),
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, FieldError> {
    value
        .as_object()
        .ok_or_else(|| FieldError::new(path, "must be a JSON object"))
}

impl DefinitionInput {
    /// Parses and checks a definition, naming the first bad field.
    ///
    /// Checks everything that needs no database: names, labels, types,
    /// options, counts, the primary attribute. Whether associated types exist
    /// is for the caller to check.
    pub fn from_json(value: &Value) -> Result<Self, FieldError> {
        let obj = object(value, "body")?;
        let label = label(obj, "label", "")?;
        let attributes = match obj.get("attributes") {
            Some(Value::Array(items)) => parse_attributes(items)?,
            None | Some(Value::Null) => return Err(FieldError::new("attributes", "is required")),
            Some(_) => return Err(FieldError::new("attributes", "must be an array")),
        };
        let associations = match obj.get("associations") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(parse_associations(items)?),
            Some(_) => return Err(FieldError::new("associations", "must be an array")),
        };
        Ok(Self {
            label,
            attributes,
            associations,
        })
    }
}

fn parse_attributes(items: &[Value]) -> Result<Vec<AttributeDef>, FieldError> {
    if items.is_empty() {
        return Err(FieldError::new(
            "attributes",
            "must hold at least the primary attribute (of type text)",
        ));
    }
    if items.len() > MAX_ATTRIBUTES {
        return Err(FieldError::new(
            "attributes",
            format!("must hold at most {MAX_ATTRIBUTES} attributes"),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("attributes[{i}]");
        let attr = parse_attribute(item, &path)?;
        if !seen.insert(attr.key.clone()) {
            return Err(FieldError::new(
                format!("{path}.key"),
                format!("'{}' is defined twice", attr.key),
            ));
        }
        if i == 0 && attr.kind != AttributeType::Text {
            return Err(FieldError::new(
                format!("{path}.type"),
                "the first attribute is the primary one and must be of type text",
            ));
        }
        out.push(attr);
    }
    Ok(out)
}

fn parse_attribute(item: &Value, path: &str) -> Result<AttributeDef, FieldError> {
    let obj = object(item, path)?;
    let key = match obj.get("key") {
        Some(Value::String(s)) => AttributeKey::parse(s.as_str())
            .map_err(|e| FieldError::new(format!("{path}.key"), e.to_string()))?,
        None | Some(Value::Null) => {
            return Err(FieldError::new(format!("{path}.key"), "is required"));
        }
        Some(_) => return Err(FieldError::new(format!("{path}.key"), "must be a string")),
    };
    let label = label(obj, "label", &format!("{path}."))?;
    let kind = match obj.get("type") {
        Some(Value::String(s)) => AttributeType::parse(s).ok_or_else(|| {
            FieldError::new(
                format!("{path}.type"),
                format!(
                    "'{s}' is not a type; use one of text, number, boolean, date, url, category, multiple_category"
                ),
            )
        })?,
        None | Some(Value::Null) => return Err(FieldError::new(format!("{path}.type"), "is required")),
        Some(_) => return Err(FieldError::new(format!("{path}.type"), "must be a string")),
    };
    let options = parse_options(obj.get("options"), kind, path)?;
    Ok(AttributeDef {
        key,
        label,
        kind,
        options,
    })
}

fn parse_options(
    value: Option<&Value>,
    kind: AttributeType,
    path: &str,
) -> Result<Vec<CategoryOption>, FieldError> {
    let field = format!("{path}.options");
    let items = match value {
        None | Some(Value::Null) if kind.has_options() => {
            return Err(FieldError::new(field, "is required for category types"));
        }
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(_) if !kind.has_options() => {
            return Err(FieldError::new(field, "is only allowed for category types"));
        }
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(FieldError::new(field, "must hold at least one option"));
        }
        Some(Value::Array(items)) => items,
        Some(_) => return Err(FieldError::new(field, "must be an array")),
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let opath = format!("{field}[{i}]");
        let obj = object(item, &opath)?;
        let key = label(obj, "key", &format!("{opath}."))?;
        let option_label = label(obj, "label", &format!("{opath}."))?;
        if !seen.insert(key.clone()) {
            return Err(FieldError::new(
                format!("{opath}.key"),
                format!("'{key}' is defined twice"),
            ));
        }
        out.push(CategoryOption {
            key,
            label: option_label,
        });
    }
    Ok(out)
}

fn parse_associations(items: &[Value]) -> Result<Vec<ObjectTypeName>, FieldError> {
    if items.len() > MAX_TYPE_ASSOCIATIONS {
        return Err(FieldError::new(
            "associations",
            format!("must hold at most {MAX_TYPE_ASSOCIATIONS} object types"),
        ));
    }
    let mut out: Vec<ObjectTypeName> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("associations[{i}]");
        let name = match item {
            Value::String(s) => ObjectTypeName::parse(s.as_str())
                .map_err(|e| FieldError::new(&path, e.to_string()))?,
            _ => return Err(FieldError::new(path, "must be an object type name")),
        };
        if out.contains(&name) {
            return Err(FieldError::new(path, format!("'{name}' is listed twice")));
        }
        out.push(name);
    }
    Ok(out)
}

/// A stored object type as the worker and the API use it: the definition
/// plus a key index, so that checking a record's attributes is a hash lookup
/// per key even for types with hundreds of attributes.
#[derive(Debug, Clone)]
pub struct ObjectType {
    pub id: TypeId,
    pub name: ObjectTypeName,
    pub label: String,
    pub attributes: Vec<AttributeDef>,
    /// Types this one may be linked to, its own included when self-associated.
    pub associations: Vec<ObjectTypeName>,
    /// FNV: keys are short and trusted (checked against the pattern),
    /// and this lookup runs for every attribute of every record.
    index: HashMap<String, usize, fnv::FnvBuildHasher>,
}

impl ObjectType {
    pub fn new(
        id: TypeId,
        name: ObjectTypeName,
        label: String,
        attributes: Vec<AttributeDef>,
        associations: Vec<ObjectTypeName>,
    ) -> Self {
        let index = attributes
            .iter()
            .enumerate()
            .map(|(i, a)| (a.key.as_str().to_owned(), i))
            .collect();
        Self {
            id,
            name,
            label,
            attributes,
            associations,
            index,
        }
    }

    /// The attribute with this key, if the type defines it.
    pub fn attribute(&self, key: &str) -> Option<&AttributeDef> {
        self.index.get(key).map(|&i| &self.attributes[i])
    }

    /// Whether records of this type may link to records of `other`.
    pub fn is_associated_with(&self, other: &str) -> bool {
        self.associations.iter().any(|a| a.as_str() == other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_type_names_round_trip() {
        for (name, t) in AttributeType::ALL {
            assert_eq!(t.as_str(), name);
            assert_eq!(AttributeType::parse(t.as_str()), Some(t));
        }
    }
    use serde_json::json;

    fn err(value: Value) -> FieldError {
        DefinitionInput::from_json(&value).unwrap_err()
    }

    #[test]
    fn parses_a_full_definition() {
        let def = DefinitionInput::from_json(&json!({
            "label": "Vehicles",
            "attributes": [
                {"key": "name", "label": "Name", "type": "text"},
                {"key": "price", "label": "Price", "type": "number"},
                {"key": "color", "label": "Color", "type": "category",
                 "options": [{"key": "red", "label": "Red"}, {"key": "blue", "label": "Blue"}]},
                {"key": "tags", "label": "Tags", "type": "multiple_category",
                 "options": [{"key": "a", "label": "A"}]},
            ],
            "associations": ["garage", "vehicle"]
        }))
        .unwrap();
        assert_eq!(def.attributes.len(), 4);
        assert_eq!(def.attributes[2].kind, AttributeType::Category);
        assert!(def.attributes[2].has_option("red"));
        assert_eq!(def.associations.unwrap().len(), 2);
    }

    #[test]
    fn associations_left_out_mean_unchanged() {
        let def = DefinitionInput::from_json(&json!({
            "label": "V", "attributes": [{"key": "name", "label": "Name", "type": "text"}]
        }))
        .unwrap();
        assert_eq!(def.associations, None);
    }

    #[test]
    fn names_the_bad_field() {
        let base = |attrs: Value| json!({"label": "V", "attributes": attrs});
        assert_eq!(err(json!({"attributes": []})).field, "label");
        assert_eq!(err(base(json!([]))).field, "attributes");
        assert_eq!(
            err(base(json!([{"key": "n", "label": "N", "type": "number"}]))).field,
            "attributes[0].type"
        );
        assert_eq!(
            err(base(json!([{"key": "n", "label": "N", "type": "text"},
                             {"key": "Bad", "label": "B", "type": "text"}])))
            .field,
            "attributes[1].key"
        );
        assert_eq!(
            err(base(json!([{"key": "n", "label": "N", "type": "text"},
                             {"key": "n", "label": "B", "type": "text"}])))
            .field,
            "attributes[1].key"
        );
        assert_eq!(
            err(base(json!([{"key": "n", "label": "N", "type": "text"},
                             {"key": "c", "label": "C", "type": "category"}])))
            .field,
            "attributes[1].options"
        );
        assert_eq!(
            err(base(json!([{"key": "n", "label": "N", "type": "text"},
                             {"key": "c", "label": "C", "type": "category",
                              "options": [{"key": "x", "label": "X"}, {"key": "x", "label": "Y"}]}])))
            .field,
            "attributes[1].options[1].key"
        );
        assert_eq!(
            err(base(
                json!([{"key": "n", "label": "N", "type": "text", "options": []}])
            ))
            .field,
            "attributes[0].options"
        );
        assert_eq!(
            err(base(json!([{"key": "n", "label": "N", "type": "texte"}]))).field,
            "attributes[0].type"
        );
    }

    #[test]
    fn enforces_counts() {
        let mut attrs = vec![json!({"key": "name", "label": "Name", "type": "text"})];
        for i in 1..=MAX_ATTRIBUTES {
            attrs.push(json!({"key": format!("a{i}"), "label": "A", "type": "number"}));
        }
        assert_eq!(
            err(json!({"label": "V", "attributes": attrs})).field,
            "attributes"
        );
        let assoc: Vec<String> = (0..=MAX_TYPE_ASSOCIATIONS)
            .map(|i| format!("t{i}"))
            .collect();
        let e = err(json!({"label": "V",
            "attributes": [{"key": "n", "label": "N", "type": "text"}],
            "associations": assoc}));
        assert_eq!(e.field, "associations");
    }

    #[test]
    fn object_type_indexes_attributes() {
        let def = DefinitionInput::from_json(&json!({
            "label": "V", "attributes": [
                {"key": "name", "label": "Name", "type": "text"},
                {"key": "price", "label": "Price", "type": "number"}]
        }))
        .unwrap();
        let t = ObjectType::new(
            TypeId(1),
            ObjectTypeName::parse("vehicle").unwrap(),
            def.label,
            def.attributes,
            vec![],
        );
        assert_eq!(t.attribute("price").unwrap().kind, AttributeType::Number);
        assert!(t.attribute("nope").is_none());
    }
}
