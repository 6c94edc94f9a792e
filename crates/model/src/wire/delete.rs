//! Reading a delete body: `{"identifiers": {"ids": [...]}}` or
//! `{"identifiers": {"ext_ids": [...]}}`, one of the two, 1 to 1,000.

use serde::{Deserialize, Serialize};

use super::identifiers::{ext_id, id};
use super::json::{array, duplicate, object};
use super::upsert::{member, top_level, utf8};
use crate::error::{ApiCode, RequestError};
use crate::limits::MAX_DELETES_PER_BATCH;

/// The identifiers of a delete batch: our ids or the producer's ext_ids,
/// never both in one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteBatch {
    Ids(Vec<i64>),
    ExtIds(Vec<String>),
}

impl DeleteBatch {
    /// Reads and checks a delete body. Like [`super::Upsert::decode`], the
    /// one reader of both ingest and the worker.
    pub fn decode(body: &[u8]) -> Result<Self, RequestError> {
        let top = top_level(utf8(body)?)?;
        let raw = member(&top, "identifiers", || {
            RequestError::invalid("the body has 'identifiers' twice")
        })?
        .ok_or_else(|| {
            RequestError::new(
                ApiCode::MissingParameter,
                "the body must have an 'identifiers' object with 'ids' or 'ext_ids'",
            )
        })?;
        let ids = object(raw)
            .map_err(|_| RequestError::invalid("'identifiers' must be a JSON object"))?;
        if let Some(key) = duplicate(&ids) {
            return Err(RequestError::invalid(format!(
                "identifiers has '{key}' twice"
            )));
        }
        if let Some((other, _)) = ids.0.iter().find(|(k, _)| k != "ids" && k != "ext_ids") {
            return Err(RequestError::invalid(format!(
                "identifiers has an unknown key '{other}'; use 'ids' or 'ext_ids'"
            )));
        }
        if let Some(other) = ids.1.first() {
            return Err(RequestError::invalid(format!(
                "identifiers has an unknown key {}; use 'ids' or 'ext_ids'",
                super::identifiers::shown(other)
            )));
        }
        let field = |name: &str| ids.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let list = |raw| {
            array(raw).map_err(|_| RequestError::invalid("'ids' / 'ext_ids' must be an array"))
        };
        let batch = match (field("ids"), field("ext_ids")) {
            (Some(_), Some(_)) => {
                return Err(RequestError::invalid(
                    "identifiers must hold 'ids' or 'ext_ids', not both",
                ));
            }
            (Some(raw), None) => Self::Ids(
                list(raw)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| id(&format!("identifiers.ids[{i}]"), v))
                    .collect::<Result<_, _>>()?,
            ),
            (None, Some(raw)) => Self::ExtIds(
                list(raw)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| ext_id(&format!("identifiers.ext_ids[{i}]"), v))
                    .collect::<Result<_, _>>()?,
            ),
            (None, None) => {
                return Err(RequestError::new(
                    ApiCode::MissingParameter,
                    "identifiers must hold 'ids' or 'ext_ids'",
                ));
            }
        };
        let len = batch.len();
        if len == 0 || len > MAX_DELETES_PER_BATCH {
            return Err(RequestError::out_of_range(format!(
                "a delete batch must name 1 to {MAX_DELETES_PER_BATCH} records, got {len}"
            )));
        }
        Ok(batch)
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Ids(v) => v.len(),
            Self::ExtIds(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
