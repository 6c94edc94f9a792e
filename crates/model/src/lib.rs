//! The domain of objectsync: schema rules, record and batch types,
//! validation, error codes and the message envelope.
//!
//! No I/O lives here, so every rule of the contract that can be judged
//! without a database is tested in plain unit tests beside its code.

pub mod batch;
pub mod envelope;
pub mod error;
pub mod limits;
pub mod names;
pub mod prepare;
pub mod schema;
pub mod value;

pub use batch::{
    AssociationIn, DeleteBatch, Identifiers, LinkAction, RawUpsert, RecordIn, TargetIn, UpsertBatch,
};
pub use envelope::{Envelope, EnvelopeError, Job};
pub use error::{ApiCode, RejectionCode, RequestError};
pub use names::{AttributeKey, NameError, ObjectTypeName};
pub use schema::{
    AttributeDef, AttributeType, CategoryOption, DefinitionInput, FieldError, ObjectType,
};
