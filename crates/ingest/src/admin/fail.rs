//! Failing an open process by hand, for the admin API, the CLI and the
//! console alike: the way out when a batch will never be applied (its
//! message was purged, say) and later batches of its organization wait for
//! it in acceptance order.
//!
//! The process ends `failed` with the operator's reason (`info.error` reads
//! "failed by an operator: …"), who did it (`failed_by`) and when
//! (`completed_at`). Like any failed process it applied nothing and is left
//! out of acceptance order, so the batches waiting for it go on; if its
//! message turns up later, the worker finds it final, acknowledges it and
//! applies nothing.

pub use objectsync_model::limits::{MAX_OPERATOR_CHARS, MAX_REASON_CHARS};
use objectsync_model::{FieldError, OrgId, ProcessId};
use objectsync_store::GenericClient;
use objectsync_store::ending::{self, OperatorFail};
use serde::Serialize;
use utoipa::ToSchema;

use super::service::AdminError;

/// A process an operator failed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailedProcess {
    pub org_id: OrgId,
    pub process_id: ProcessId,
    /// Always `failed`.
    pub status: String,
    /// What `GET /v3/processes/{id}` answers in `info.error`.
    pub error: String,
    /// Who failed it.
    pub failed_by: String,
    #[schema(format = DateTime)]
    pub failed_at: String,
}

/// `text` trimmed, checked to be present, at most `max` characters and
/// free of control characters (NUL included, which PostgreSQL refuses).
fn checked<'a>(field: &str, text: &'a str, max: usize) -> Result<&'a str, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    if text.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters long"),
        ));
    }
    Ok(text)
}

/// Fails process `process` of `org` for `reason`, recording `operator`.
/// `NotFound` for an unknown process, `Conflict` for one that already
/// ended (it is left as it is).
pub async fn fail_process(
    client: &impl GenericClient,
    org: OrgId,
    process: ProcessId,
    operator: &str,
    reason: &str,
) -> Result<FailedProcess, AdminError> {
    let reason = checked("reason", reason, MAX_REASON_CHARS)?;
    let operator = checked("operator", operator, MAX_OPERATOR_CHARS)?;
    let error = format!("failed by an operator: {reason}");
    match ending::fail_by_operator(client, org, process, operator, &error).await? {
        OperatorFail::Failed(at) => {
            tracing::warn!(
                org_id = org.get(),
                process_id = process.get(),
                operator,
                reason,
                "process failed by an operator"
            );
            Ok(FailedProcess {
                org_id: org,
                process_id: process,
                status: "failed".into(),
                error,
                failed_by: operator.to_owned(),
                failed_at: crate::web::timestamp(at),
            })
        }
        OperatorFail::AlreadyEnded(status) => Err(AdminError::Conflict(format!(
            "process {process} of organization {org} already ended ({}); it is left as it is",
            status.as_str()
        ))),
        OperatorFail::NotFound => Err(AdminError::NotFound(format!(
            "organization {org} has no process {process}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_names_are_checked() {
        assert_eq!(checked("reason", "  purged \n", 10).unwrap(), "purged");
        assert!(checked("reason", " ", 10).is_err());
        assert!(checked("reason", "a\0b", 10).is_err());
        assert!(checked("reason", &"é".repeat(11), 10).is_err());
        assert!(checked("reason", "two\nlines", 10).is_ok());
    }
}
