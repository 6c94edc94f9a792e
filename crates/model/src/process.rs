//! The process state machine: what kind of batch a process is, and where it
//! stands. Stored as PostgreSQL enums of the same spelling.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a batch asks for; the process `name` of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ProcessKind {
    #[serde(rename = "OBJECT_RECORDS_UPSERT")]
    Upsert,
    #[serde(rename = "OBJECT_RECORDS_DELETE")]
    Delete,
}

impl ProcessKind {
    /// The name clients see (and the `process_name` enum label).
    pub fn name(self) -> &'static str {
        match self {
            Self::Upsert => "OBJECT_RECORDS_UPSERT",
            Self::Delete => "OBJECT_RECORDS_DELETE",
        }
    }

    /// A short label for metrics and message headers.
    pub fn short(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for ProcessKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProcessKind {
    type Err = String;
    /// Reads either spelling: the API name or the short label.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "OBJECT_RECORDS_UPSERT" | "upsert" => Ok(Self::Upsert),
            "OBJECT_RECORDS_DELETE" | "delete" => Ok(Self::Delete),
            other => Err(format!("unknown process kind '{other}'")),
        }
    }
}

/// `queued → in_process → completed | failed`; the last two are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ProcessStatus {
    Queued,
    InProcess,
    Completed,
    Failed,
}

impl ProcessStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProcess => "in_process",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// A final process never changes again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

impl fmt::Display for ProcessStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProcessStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "queued" => Ok(Self::Queued),
            "in_process" => Ok(Self::InProcess),
            "completed" => Ok(Self::Completed),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown process status '{other}'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [ProcessKind::Upsert, ProcessKind::Delete] {
            assert_eq!(k.name().parse::<ProcessKind>(), Ok(k));
            assert_eq!(k.short().parse::<ProcessKind>(), Ok(k));
        }
        for s in [
            ProcessStatus::Queued,
            ProcessStatus::InProcess,
            ProcessStatus::Completed,
            ProcessStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<ProcessStatus>(), Ok(s));
        }
        assert!(ProcessStatus::Failed.is_final() && !ProcessStatus::InProcess.is_final());
    }
}
