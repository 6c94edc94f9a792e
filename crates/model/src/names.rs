//! Validated names: object types and attribute keys.
//!
//! Both follow `^[a-z][a-z0-9_]*$` and differ only in length, so they share
//! one check. Names are part of URLs and of SQL-stored definitions, so they are
//! kept to a plain ASCII alphabet that never needs escaping.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("must start with a lower-case letter and hold only a-z, 0-9 and _")]
    BadCharacters,
}

fn check(name: &str, max: usize) -> Result<(), NameError> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(NameError::Empty),
        Some(first) if !first.is_ascii_lowercase() => return Err(NameError::BadCharacters),
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(NameError::BadCharacters);
    }
    if name.len() > max {
        return Err(NameError::TooLong { max });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $pattern:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        /// The document says what [`check`] refuses: a client generated
        /// from it refuses the same names before sending them.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .pattern(Some($pattern))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl $name {
            /// The longest name accepted.
            pub const MAX_LEN: usize = $max;

            /// Checks `name` against the pattern and the length limit.
            pub fn parse(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                check(&name, Self::MAX_LEN)?;
                Ok(Self(name))
            }

            /// The name as it is stored and shown.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// The name of an object type, `^[a-z][a-z0-9_]{0,31}$`; it appears in URLs.
    ObjectTypeName,
    32,
    "^[a-z][a-z0-9_]{0,31}$"
);

name_type!(
    /// The key of an attribute, `^[a-z][a-z0-9_]{0,63}$`.
    AttributeKey,
    64,
    "^[a-z][a-z0-9_]{0,63}$"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_names() {
        for name in ["a", "vehicle", "car_2", "a_b_c_", &"x".repeat(32)] {
            assert!(ObjectTypeName::parse(name).is_ok(), "{name}");
        }
        assert!(AttributeKey::parse("k".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_malformed_names() {
        assert_eq!(ObjectTypeName::parse(""), Err(NameError::Empty));
        for name in ["1car", "_car", "Car", "car-2", "car 2", "vé", "car.x"] {
            assert_eq!(
                ObjectTypeName::parse(name),
                Err(NameError::BadCharacters),
                "{name}"
            );
        }
        assert_eq!(
            ObjectTypeName::parse("x".repeat(33)),
            Err(NameError::TooLong { max: 32 })
        );
        assert_eq!(
            AttributeKey::parse("k".repeat(65)),
            Err(NameError::TooLong { max: 64 })
        );
    }

    #[test]
    fn deserializes_through_the_check() {
        let ok: ObjectTypeName = serde_json::from_str("\"garage\"").unwrap();
        assert_eq!(ok.as_str(), "garage");
        assert!(serde_json::from_str::<ObjectTypeName>("\"Garage\"").is_err());
    }
}
