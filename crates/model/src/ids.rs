//! Newtypes for the four kinds of id, so that an organization id can never
//! be passed where a process id is expected. They are stored as plain
//! integers (`postgres(transparent)`) and serialize as numbers.

use std::fmt;

use postgres_types::{FromSql, ToSql};
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $inner:ty) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSql,
            FromSql,
        )]
        #[serde(transparent)]
        #[postgres(transparent)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub struct $name(pub $inner);

        impl $name {
            /// The id as stored.
            pub fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
    };
}

id_type!(
    /// An organization (tenant).
    OrgId,
    i64
);
id_type!(
    /// A process: one accepted batch; the `processId` clients poll.
    ProcessId,
    i64
);
id_type!(
    /// An object type of an organization.
    TypeId,
    i32
);
id_type!(
    /// A record of an object type.
    RecordId,
    i64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_plain_numbers() {
        assert_eq!(serde_json::to_string(&ProcessId(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<OrgId>("7").unwrap(), OrgId(7));
        assert_eq!(RecordId(5).to_string(), "5");
    }
}
