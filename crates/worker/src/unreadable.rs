//! Messages whose headers cannot be read as a batch of this version: they
//! are dead-lettered at once, and the process they name, when they name one,
//! ends `failed` with the reason.
//!
//! Everything needed to end a process travels in the headers, so this never
//! needs the body — except for messages of the JSON envelope that versions
//! before 3 published, whose ids are read from the body so that batches
//! queued before an upgrade still end their processes.

use lapin::BasicProperties;
use objectsync_infra::message;
use objectsync_model::{MetaError, OrgId, ProcessId};
use objectsync_store::{ending, processes};

use crate::ctx::Ctx;

/// The organization and process a message names, whatever else is wrong.
pub(crate) struct Named {
    pub(crate) org_id: OrgId,
    pub(crate) process_id: ProcessId,
}

/// Which process a message names, and why it cannot be applied (if it can
/// be identified at all).
pub(crate) fn identify(props: &BasicProperties, body: &[u8]) -> (Option<Named>, String) {
    match message::read_meta(props) {
        Ok(meta) => (
            Some(Named {
                org_id: meta.org_id,
                process_id: meta.process_id,
            }),
            String::new(),
        ),
        Err(e) => named_by_error(&e, body),
    }
}

fn named_by_error(e: &MetaError, body: &[u8]) -> (Option<Named>, String) {
    if let (Some(org_id), Some(process_id)) = (e.org_id, e.process_id) {
        let reason = format!("the message cannot be read: {}", e.reason);
        return (Some(Named { org_id, process_id }), reason);
    }
    #[derive(serde::Deserialize)]
    struct Legacy {
        process_id: i64,
        org_id: i64,
    }
    match serde_json::from_slice::<Legacy>(body) {
        Ok(l) => (
            Some(Named {
                org_id: OrgId(l.org_id),
                process_id: ProcessId(l.process_id),
            }),
            "the message was queued by an older version of objectsync, which this worker no \
             longer reads; send the batch again"
                .to_owned(),
        ),
        Err(_) => (None, format!("the message cannot be read: {}", e.reason)),
    }
}

/// Ends the process a message with unreadable metadata names, if it names
/// one. The caller dead-letters the message.
pub(crate) async fn fail(ctx: &Ctx, e: &MetaError, body: &[u8]) {
    let (named, reason) = named_by_error(e, body);
    let Some(n) = named else {
        tracing::error!(%reason, "a message that names no process; dead-lettering it");
        return;
    };
    tracing::error!(
        process_id = n.process_id.get(),
        org_id = n.org_id.get(),
        %reason,
        "unreadable message; dead-lettering it"
    );
    // If the database is down, the dead-letter tracker ends the process.
    if let Ok(client) = ctx.pool.get().await
        && let Ok(true) = fail_named(&client, &n, &reason).await
    {
        metrics::counter!("objectsync_processes_failed_total", "reason" => "unreadable")
            .increment(1);
    }
}

/// Fails the process `n` names; if its organization has no such process and
/// another one has, that one, with the mismatch added to the reason.
async fn fail_named(
    c: &impl objectsync_store::GenericClient,
    n: &Named,
    reason: &str,
) -> objectsync_store::StoreResult<bool> {
    match ending::owner(c, n.process_id).await? {
        Some(owner) if owner != n.org_id => {
            let misnamed = crate::apply::misnamed(n.org_id, n.process_id, owner);
            processes::fail(c, owner, n.process_id, &format!("{reason}; {misnamed}")).await
        }
        _ => processes::fail(c, n.org_id, n.process_id, reason).await,
    }
}
