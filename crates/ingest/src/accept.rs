//! Accepting a batch once its sender is known: what the HTTP API's upsert
//! and delete and the AMQP inbox share, so that a batch is checked, capped
//! and recorded the same way whichever way it came.
//!
//! Before this, each caller has authenticated the sender and taken a token
//! from its rate limit (`auth::authenticate`) and checked the body's media
//! type and size (`web::body`); [`accept`] hands the batch to
//! `Publisher::submit`, which reads it, checks the type, the backlog cap and
//! the idempotency key, and makes it durable.

use objectsync_model::{ProcessId, ProcessKind};

use crate::auth::Org;
use crate::error::ApiResult;
use crate::limits::Slot;
use crate::publisher::{PublishError, Submission};
use crate::state::AppState;

/// A batch to accept, as either transport carries it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batch<'a> {
    pub(crate) object_type: &'a str,
    pub(crate) kind: ProcessKind,
    /// The body, in the API's JSON shape, already within the size limit.
    pub(crate) body: &'a [u8],
    /// The `Idempotency-Key` (HTTP), or the message id (inbox).
    pub(crate) idempotency_key: Option<&'a str>,
    /// Carried to the worker's logs.
    pub(crate) request_id: Option<&'a str>,
}

/// Makes `batch` of `org` durable and returns its process, or the answer
/// that refuses it; a refusal by the backlog cap gives the rate limit's
/// token back and puts the cap's verdict in `slot`.
pub(crate) async fn accept(
    state: &AppState,
    org: &Org,
    slot: Option<&Slot>,
    batch: Batch<'_>,
) -> ApiResult<ProcessId> {
    let submitted = state
        .publisher
        .submit(Submission {
            org_id: org.id,
            object_type: batch.object_type,
            kind: batch.kind,
            body: batch.body,
            idempotency_key: batch.idempotency_key,
            request_id: batch.request_id,
            max_open_processes: org.limits.max_open_processes,
            replay_of: None,
        })
        .await;
    if let Err(PublishError::Backlog { .. }) = &submitted {
        crate::limits::backlog_refused(&state.pool, org.id, &org.limits, slot).await;
    }
    let process_id = submitted?;
    crate::trace::record_process(process_id);
    Ok(process_id)
}
