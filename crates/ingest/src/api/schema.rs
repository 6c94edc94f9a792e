//! The bodies of the public API as types: what handlers answer
//! (`Serialize`), and what clients send, described for the OpenAPI document
//! as strictly as the server reads it (the server reads bodies with
//! `objectsync_model::wire`, not with these types).

use std::collections::BTreeMap;

use objectsync_model::{ProcessId, RecordId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

/// `202`: the batch is durable and will be applied (or its process will say
/// why not).
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    #[serde(rename = "processId")]
    pub process_id: ProcessId,
    #[schema(example = "Batch object records are being processed")]
    pub message: String,
}

impl Accepted {
    pub fn new(process_id: ProcessId) -> Self {
        Self {
            process_id,
            message: "Batch object records are being processed".into(),
        }
    }
}

/// A positive 64-bit id.
pub(crate) struct PositiveId;

impl PartialSchema for PositiveId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .into()
    }
}

impl ToSchema for PositiveId {}

/// An `ext_id`: 1 to 255 characters, no NUL.
pub(crate) struct ExtId;

impl PartialSchema for ExtId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some("^[^\\u0000]+$"))
            .into()
    }
}

impl ToSchema for ExtId {}

/// How a record is named; both may be given (`id` wins, and a record
/// without an `ext_id` gets this one); neither creates a record.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct IdentifiersIn {
    #[schema(value_type = Option<PositiveId>)]
    id: Option<i64>,
    #[schema(value_type = Option<ExtId>)]
    ext_id: Option<String>,
}

/// Exactly one of `id` and `ext_id`.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum TargetIdentifiers {
    Id(ById),
    ExtId(ByExtId),
}

/// A record named by its id.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ById {
    #[schema(value_type = PositiveId)]
    id: i64,
}

/// A record named by its `ext_id`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ByExtId {
    #[schema(value_type = ExtId)]
    ext_id: String,
}

/// A record to link to or unlink from.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct TargetIn {
    identifiers: TargetIdentifiers,
}

/// Add or remove links.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum LinkActionIn {
    Link,
    Unlink,
}

/// Links of one record to records of one type. At most 10 records per
/// object type and action on one record, counted over all its entries.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct AssociationIn {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,31}$")]
    object_type: String,
    /// Default `link`.
    action: Option<LinkActionIn>,
    #[schema(max_items = 10)]
    records: Vec<TargetIn>,
}

/// One record of an upsert.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct RecordIn {
    identifiers: Option<IdentifiersIn>,
    /// Attribute key → value (at most 500), typed by the object type's
    /// definition; `null` clears. Keys the type does not define are ignored;
    /// a value that does not fit its type rejects the record
    /// (`invalid_attribute_value`).
    #[schema(value_type = Option<Object>)]
    attributes: Option<BTreeMap<String, Value>>,
    #[schema(max_items = 20)]
    associations: Option<Vec<AssociationIn>>,
}

/// The body of an upsert.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct UpsertIn {
    #[schema(min_items = 1, max_items = 1000)]
    records: Vec<RecordIn>,
}

/// Ids to delete.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct IdsIn {
    #[schema(value_type = Vec<PositiveId>, min_items = 1, max_items = 1000)]
    ids: Vec<i64>,
}

/// `ext_id`s to delete.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ExtIdsIn {
    #[schema(value_type = Vec<ExtId>, min_items = 1, max_items = 1000)]
    ext_ids: Vec<String>,
}

/// Either list, not both.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum DeleteIdentifiers {
    Ids(IdsIn),
    ExtIds(ExtIdsIn),
}

/// The body of a delete.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct DeleteIn {
    identifiers: DeleteIdentifiers,
}

/// A record's identifiers as stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StoredIdentifiers {
    pub(crate) id: RecordId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ext_id: Option<String>,
}
