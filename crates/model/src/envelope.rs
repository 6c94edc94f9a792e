//! The message that carries a batch from ingest to the workers.
//!
//! It is versioned so that workers of one release can refuse, rather than
//! misread, messages of another: a message of an unknown version is
//! dead-lettered, not guessed at.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use serde_json::value::RawValue;

use crate::batch::{DeleteBatch, RawUpsert, UpsertBatch};
use crate::names::ObjectTypeName;

/// The envelope version this build writes and reads. Version 2: records in
/// the API's own shape (association targets as `{"identifiers": ...}`).
pub const ENVELOPE_VERSION: u32 = 2;

/// What a batch asks for. Externally tagged so that decoding streams
/// straight into the records without buffering the message twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    Upsert(UpsertBatch),
    Delete(DeleteBatch),
}

impl Job {
    /// How many records the batch names.
    pub fn len(&self) -> usize {
        match self {
            Self::Upsert(b) => b.records.len(),
            Self::Delete(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One batch on the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    pub process_id: i64,
    pub org_id: i64,
    pub object_type: ObjectTypeName,
    /// When ingest accepted the batch; lets workers measure queue lag.
    pub enqueued_at: DateTime<Utc>,
    /// The PostgreSQL transaction that created the process row. The message
    /// is published before that transaction commits, so a worker that cannot
    /// see the process asks PostgreSQL whether it is still coming or was
    /// rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xact_id: Option<u64>,
    pub job: Job,
}

/// Why a message could not be read as an envelope. Always permanent.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the message is not a valid envelope: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("envelope version {0} is not supported (this worker reads version {ENVELOPE_VERSION})")]
    Version(u32),
}

impl Envelope {
    pub fn new(process_id: i64, org_id: i64, object_type: ObjectTypeName, job: Job) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            process_id,
            org_id,
            object_type,
            enqueued_at: Utc::now(),
            xact_id: None,
            job,
        }
    }

    /// The message for an upsert whose records are passed on verbatim from
    /// the request (see [`RawUpsert`]); it reads back as an [`Envelope`].
    pub fn encode_raw_upsert(
        process_id: i64,
        org_id: i64,
        object_type: &ObjectTypeName,
        xact_id: Option<u64>,
        batch: RawUpsert<'_>,
    ) -> Vec<u8> {
        #[derive(Serialize)]
        struct Records<'a> {
            records: &'a RawValue,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "snake_case")]
        enum JobRef<'a> {
            Upsert(Records<'a>),
        }
        #[derive(Serialize)]
        struct EnvelopeRef<'a> {
            v: u32,
            process_id: i64,
            org_id: i64,
            object_type: &'a ObjectTypeName,
            enqueued_at: DateTime<Utc>,
            #[serde(skip_serializing_if = "Option::is_none")]
            xact_id: Option<u64>,
            job: JobRef<'a>,
        }
        serde_json::to_vec(&EnvelopeRef {
            v: ENVELOPE_VERSION,
            process_id,
            org_id,
            object_type,
            enqueued_at: Utc::now(),
            xact_id,
            job: JobRef::Upsert(Records {
                records: batch.records,
            }),
        })
        .unwrap_or_default()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let envelope = match serde_json::from_slice::<Envelope>(bytes) {
            Ok(e) => e,
            Err(e) => {
                // Tell a version mismatch apart from garbage.
                return match serde_json::from_slice::<Version>(bytes) {
                    Ok(Version { v }) if v != ENVELOPE_VERSION => Err(EnvelopeError::Version(v)),
                    _ => Err(e.into()),
                };
            }
        };
        if envelope.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(envelope.v));
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let batch = UpsertBatch::parse(br#"{"records":[{"identifiers":{"ext_id":"a"}}]}"#).unwrap();
        let e = Envelope::new(
            7,
            3,
            ObjectTypeName::parse("vehicle").unwrap(),
            Job::Upsert(batch),
        );
        assert_eq!(Envelope::from_bytes(&e.to_bytes()).unwrap(), e);
    }

    #[test]
    fn a_raw_upsert_reads_back_as_the_parsed_batch() {
        let body = br#"{"records":[
            {"identifiers":{"ext_id":"a"},"attributes":{"x":1,"y":null},
             "associations":[{"object_type":"garage","records":[{"identifiers":{"id":7}}]}]},
            {"identifiers":null,"attributes":null,"associations":null}]}"#;
        let raw = RawUpsert::parse(body).unwrap();
        let name = ObjectTypeName::parse("vehicle").unwrap();
        let bytes = Envelope::encode_raw_upsert(5, 3, &name, Some(42), raw);
        let e = Envelope::from_bytes(&bytes).unwrap();
        assert_eq!((e.process_id, e.org_id, e.xact_id), (5, 3, Some(42)));
        assert_eq!(e.job, Job::Upsert(UpsertBatch::parse(body).unwrap()));
        let Job::Upsert(batch) = e.job else {
            unreachable!()
        };
        assert_eq!(
            batch.records[0].associations[0].records[0].identifiers.id,
            Some(7)
        );
        assert!(batch.records[1].identifiers.is_empty());
    }

    #[test]
    fn refuses_garbage_and_other_versions() {
        assert!(matches!(
            Envelope::from_bytes(b"{oops"),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(matches!(
            Envelope::from_bytes(br#"{"v":99,"whatever":true}"#),
            Err(EnvelopeError::Version(99))
        ));
    }
}
