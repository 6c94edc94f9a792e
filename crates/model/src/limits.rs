//! The numeric limits of the contract, in one place so that the API, the
//! worker and the documentation cannot drift apart.

/// Largest request body accepted by the HTTP API (1 MiB).
pub const MAX_BODY_BYTES: usize = 1_048_576;
/// Most records in one upsert batch.
pub const MAX_RECORDS_PER_BATCH: usize = 1000;
/// Most identifiers in one delete batch.
pub const MAX_DELETES_PER_BATCH: usize = 1000;
/// Most attribute keys sent for one record, and most attributes of a type.
pub const MAX_ATTRIBUTES: usize = 500;
/// Most association entries on one record.
pub const MAX_ASSOCIATION_ENTRIES: usize = 20;
/// Most associated records per (object type, action) on one record.
pub const MAX_ASSOCIATED_RECORDS: usize = 10;
/// Most associations an object type can be part of.
pub const MAX_TYPE_ASSOCIATIONS: usize = 10;
/// Longest `ext_id`, in characters.
pub const MAX_EXT_ID_CHARS: usize = 255;
/// Longest `text` value, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Longest label or option key, in characters.
pub const MAX_LABEL_CHARS: usize = 255;
/// Longest `Idempotency-Key` header.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// Longest organization name, in characters.
pub const MAX_ORG_NAME_CHARS: usize = 255;
/// Longest reason an operator may give for failing a process, in characters.
pub const MAX_REASON_CHARS: usize = 1000;
/// Longest operator name, in characters (the console's login takes 64).
pub const MAX_OPERATOR_CHARS: usize = 64;
/// `Retry-After` of a batch refused for the organization's backlog: about
/// the time a worker takes to apply a few batches.
pub const BACKLOG_RETRY_AFTER_SECS: u64 = 5;
