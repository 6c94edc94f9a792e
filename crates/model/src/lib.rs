//! The domain of objectsync: schema rules, the wire format of batches and
//! its one reader, validation, error codes, the process state machine and
//! the message metadata.
//!
//! No I/O lives here, so every rule of the contract that can be judged
//! without a database is tested in plain unit tests beside its code.

pub mod envelope;
pub mod error;
pub mod ids;
pub mod key_id;
pub mod limits;
pub mod names;
pub mod number;
pub mod prepare;
pub mod process;
pub mod report;
pub mod schema;
pub mod value;
pub mod wire;

pub use envelope::{BatchMeta, HeaderValue, MetaError};
pub use error::{ApiCode, RejectionCode, RequestError};
pub use ids::{OrgId, ProcessId, RecordId, TypeId};
pub use key_id::{KeyId, KeyIdError};
pub use names::{AttributeKey, NameError, ObjectTypeName};
pub use process::{ProcessKind, ProcessStatus};
pub use report::ProcessEvent;
pub use schema::{
    AttributeDef, AttributeType, CategoryOption, DefinitionInput, FieldError, ObjectType,
};
pub use wire::{
    AssociationIn, DeleteBatch, Identifiers, Job, LinkAction, RecordIn, TargetIn, Upsert,
};
