//! What a process reports of itself, in the one shape every reader gets:
//! `GET /v3/processes/{id}` answers it, and the completion event of a
//! process that ended carries the same `info` and timestamps, so a
//! consumer of events reads exactly what a poll would have read.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::{OrgId, ProcessId, ProcessStatus};

/// RFC 3339 in UTC with milliseconds, the form every timestamp is given in.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Record outcome counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordCounts {
    pub total: i32,
    pub processed: i32,
    pub created: i32,
    pub updated: i32,
    pub deleted: i32,
    pub failed: i32,
}

/// Outcome counts of an upsert's association entries (an extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssociationCounts {
    pub linked: i32,
    pub unlinked: i32,
    pub failed: i32,
}

/// What happened to the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessInfo {
    pub records: RecordCounts,
    /// Upserts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub associations: Option<AssociationCounts>,
    /// Why the whole process failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The completion event of a process that ended: the body published to
/// the events exchange and POSTed to webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessEvent {
    pub process_id: ProcessId,
    pub org_id: OrgId,
    pub object_type: String,
    /// `upsert` or `delete` ([`crate::ProcessKind::short`]), as the AMQP
    /// inbox's `kind` header says it.
    pub kind: &'static str,
    /// `completed` or `failed`.
    pub status: ProcessStatus,
    pub info: ProcessInfo,
    pub created_at: String,
    pub completed_at: Option<String>,
}

impl ProcessEvent {
    /// Its routing key on the events exchange:
    /// `process.{completed|failed}.{org_id}.{object_type}`.
    pub fn routing_key(&self) -> String {
        format!(
            "process.{}.{}.{}",
            self.status, self.org_id, self.object_type
        )
    }

    /// Its JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProcessKind;

    #[test]
    fn an_event_has_the_fields_and_formats_of_the_contract() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678901Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = ProcessEvent {
            process_id: ProcessId(42),
            org_id: OrgId(7),
            object_type: "vehicle".into(),
            kind: ProcessKind::Upsert.short(),
            status: ProcessStatus::Completed,
            info: ProcessInfo {
                records: RecordCounts {
                    total: 2,
                    processed: 2,
                    created: 1,
                    updated: 1,
                    deleted: 0,
                    failed: 0,
                },
                associations: None,
                error: None,
            },
            created_at: timestamp(at),
            completed_at: Some(timestamp(at)),
        };
        assert_eq!(e.routing_key(), "process.completed.7.vehicle");
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "processId": 42, "orgId": 7, "objectType": "vehicle", "kind": "upsert",
                "status": "completed",
                "info": {"records": {"total": 2, "processed": 2, "created": 1, "updated": 1,
                                     "deleted": 0, "failed": 0}},
                "createdAt": "2026-01-02T03:04:05.678Z", "completedAt": "2026-01-02T03:04:05.678Z"
            })
        );
    }
}
