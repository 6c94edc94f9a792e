//! Judging one record's attributes against its object type, as the worker
//! does before anything is written.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::schema::ObjectType;
use crate::value::check_value;

/// A record refused for a bad attribute value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute '{key}': {message}")]
pub struct AttributeError {
    pub key: String,
    pub message: String,
}

/// A record's checked attributes, borrowed from the message where they
/// need no change: a batch is judged and written without copying its values.
pub type Attributes<'a> = BTreeMap<&'a str, Cow<'a, Value>>;

/// Keeps the attributes the type defines, normalized, and drops the others
/// silently. `null` values are kept: they clear the stored value on merge.
///
/// The first bad value rejects the whole record, so a stored record never
/// holds half an update.
pub fn check_attributes<'a>(
    object_type: &ObjectType,
    attributes: &'a Map<String, Value>,
) -> Result<Attributes<'a>, AttributeError> {
    let mut out = Attributes::new();
    for (key, value) in attributes {
        let Some(def) = object_type.attribute(key) else {
            continue;
        };
        let value = check_value(def, value).map_err(|e| AttributeError {
            key: key.clone(),
            message: e.0,
        })?;
        out.insert(key.as_str(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::ObjectTypeName;
    use crate::schema::DefinitionInput;
    use serde_json::json;

    fn vehicle() -> ObjectType {
        let def = DefinitionInput::from_json(&json!({"label": "V", "attributes": [
            {"key": "name", "label": "Name", "type": "text"},
            {"key": "price", "label": "Price", "type": "number"}
        ]}))
        .unwrap();
        ObjectType::new(
            1,
            ObjectTypeName::parse("vehicle").unwrap(),
            def.label,
            def.attributes,
            vec![],
        )
    }

    #[test]
    fn drops_unknown_keys_and_keeps_nulls() {
        let attrs = json!({"name": "A", "price": null, "colour": "red"});
        let out = check_attributes(&vehicle(), attrs.as_object().unwrap()).unwrap();
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({"name": "A", "price": null})
        );
    }

    #[test]
    fn names_the_bad_key() {
        let attrs = json!({"name": "A", "price": "12"});
        let e = check_attributes(&vehicle(), attrs.as_object().unwrap()).unwrap_err();
        assert_eq!(e.key, "price");
        assert!(
            e.to_string()
                .starts_with("attribute 'price': expected a number")
        );
    }
}
