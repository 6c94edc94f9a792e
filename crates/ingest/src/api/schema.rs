//! The bodies of the public API: what handlers answer (`Serialize` types),
//! and the schemas of what clients send to the batch routes.
//!
//! Batch bodies are not deserialized into types: `objectsync_model::wire`
//! reads them by hand, borrowing from the body, keeping attribute values
//! raw for the worker, refusing a key given twice, and naming the exact
//! element at fault (`records[3].associations[0]`) — one reader that ingest
//! and the worker share, tuned for 1 MiB bodies. A type with `ToSchema`
//! beside it would be a second, unused description of the same body. So
//! the request schemas are written here once, as JSON, from the same limit
//! constants the reader uses, and the integration tests hold them to the
//! reader both ways (`requests` in the ingest tests): every body the
//! schema allows is not refused with 400, every body it refuses is. What
//! JSON Schema cannot say (a key given twice, 10 records per type and
//! action counted over a record's entries) is in the descriptions.
//! Admin bodies, read with serde, derive their schemas from the types their
//! handlers read (`crate::admin::body`).

use objectsync_model::limits::{
    MAX_ASSOCIATED_RECORDS, MAX_ASSOCIATION_ENTRIES, MAX_ATTRIBUTES, MAX_DELETES_PER_BATCH,
    MAX_RECORDS_PER_BATCH,
};
use objectsync_model::{ObjectTypeName, ProcessId, RecordId};
use serde::Serialize;
use serde_json::{Value, json};
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

/// Declares a request schema: a unit type whose schema is the JSON given,
/// registering the named schemas it refers to.
macro_rules! request_schema {
    ($(#[$doc:meta])* $name:ident, [$($dep:ident),*], $schema:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                parse(stringify!($name), $schema)
            }
        }

        impl ToSchema for $name {
            fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
                $(
                    out.push((stringify!($dep).to_owned(), <$dep as PartialSchema>::schema()));
                    <$dep as ToSchema>::schemas(out);
                )*
            }
        }
    };
}

/// A schema written as JSON, read into utoipa's model; the JSON is ours and
/// constant, and `the_served_openapi_document_is_valid` reads every one.
fn parse(name: &str, schema: Value) -> RefOr<Schema> {
    serde_json::from_value(schema).unwrap_or_else(|e| panic!("the schema of {name}: {e}"))
}

/// `{"$ref": ...}` to a named schema.
fn to(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `schema`, or `null` (which the reader takes as absent).
fn or_null(schema: Value) -> Value {
    json!({"oneOf": [{"type": "null"}, schema]})
}

request_schema!(
    /// How a record is named; both may be given (`id` wins, and a record
    /// without an `ext_id` gets this one); neither creates a record.
    IdentifiersIn,
    [PositiveId, ExtId],
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {"id": to("PositiveId"), "ext_id": to("ExtId")},
    })
);

request_schema!(
    /// Exactly one of `id` and `ext_id`.
    TargetIdentifiers,
    [PositiveId, ExtId],
    json!({"oneOf": [
        {"type": "object", "additionalProperties": false,
         "required": ["id"], "properties": {"id": to("PositiveId")}},
        {"type": "object", "additionalProperties": false,
         "required": ["ext_id"], "properties": {"ext_id": to("ExtId")}},
    ]})
);

request_schema!(
    /// A record to link to or unlink from. Other keys are ignored, as in
    /// a record.
    TargetIn,
    [TargetIdentifiers],
    json!({
        "type": "object",
        "required": ["identifiers"],
        "properties": {"identifiers": to("TargetIdentifiers")},
    })
);

request_schema!(
    /// Links of one record to records of one type. At most 10 records per
    /// object type and action on one record, counted over all its entries.
    /// Other keys are ignored, as in a record.
    AssociationIn,
    [ObjectTypeName, TargetIn],
    json!({
        "type": "object",
        "required": ["object_type", "records"],
        "properties": {
            "object_type": to("ObjectTypeName"),
            "action": or_null(json!({"type": "string", "enum": ["link", "unlink"],
                                     "description": "Default `link`."})),
            "records": {"type": "array", "maxItems": MAX_ASSOCIATED_RECORDS,
                        "items": to("TargetIn")},
        },
    })
);

request_schema!(
    /// One record of an upsert. `attributes`: attribute key → value (at
    /// most 500), typed by the object type's definition; `null` clears.
    /// Keys the type does not define are ignored; a value that does not fit
    /// its type rejects the record (`invalid_attribute_value`). Keys other
    /// than these three are ignored. No key may appear twice in an object.
    RecordIn,
    [IdentifiersIn, AssociationIn],
    json!({
        "type": "object",
        "properties": {
            "identifiers": or_null(to("IdentifiersIn")),
            "attributes": or_null(json!({"type": "object", "maxProperties": MAX_ATTRIBUTES})),
            "associations": or_null(json!({"type": "array", "maxItems": MAX_ASSOCIATION_ENTRIES,
                                           "items": to("AssociationIn")})),
        },
    })
);

request_schema!(
    /// The body of an upsert.
    UpsertIn,
    [RecordIn],
    json!({
        "type": "object",
        "required": ["records"],
        "properties": {
            "records": {"type": "array", "minItems": 1, "maxItems": MAX_RECORDS_PER_BATCH,
                        "items": to("RecordIn")},
        },
    })
);

request_schema!(
    /// The body of a delete: either list of identifiers, not both.
    DeleteIn,
    [PositiveId, ExtId],
    json!({
        "type": "object",
        "required": ["identifiers"],
        "properties": {"identifiers": {"oneOf": [
            {"type": "object", "additionalProperties": false, "required": ["ids"],
             "properties": {"ids": {"type": "array", "minItems": 1,
                 "maxItems": MAX_DELETES_PER_BATCH, "items": to("PositiveId")}}},
            {"type": "object", "additionalProperties": false, "required": ["ext_ids"],
             "properties": {"ext_ids": {"type": "array", "minItems": 1,
                 "maxItems": MAX_DELETES_PER_BATCH, "items": to("ExtId")}}},
        ]}},
    })
);

/// A record's identifiers as stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StoredIdentifiers {
    pub(crate) id: RecordId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ext_id: Option<String>,
}
