//! What ingest does for the operators' console (`objectsync_console`):
//! the actions whose rules live here, shared with the admin API and the
//! publisher.

use std::sync::Arc;

use deadpool_postgres::Pool;
use objectsync_console::{Actions, ConsoleError, Pending, Replay, ReplayError};
use objectsync_model::{OrgId, ProcessId};

use crate::admin::fail;
use crate::admin::service::{self, AdminError};
use crate::admin::webhooks;
use crate::publisher::{self, PublishError, Publisher, Submission};

/// The console's actions, carried out as the admin API and the publisher
/// carry them out.
pub(crate) struct IngestActions {
    pub(crate) pool: Pool,
    pub(crate) publisher: Arc<Publisher>,
    /// As the admin API's (`webhooks.allow_private_addresses`).
    pub(crate) allow_private_webhooks: bool,
}

fn console_error(e: AdminError) -> ConsoleError {
    match e {
        AdminError::NotFound(m) => ConsoleError::NotFound(m),
        AdminError::Invalid(f) => ConsoleError::BadRequest(f.to_string()),
        AdminError::Conflict(m) => ConsoleError::Conflict(m),
        AdminError::Store(e) => ConsoleError::Store(e),
    }
}

impl Actions for IngestActions {
    fn fail_process<'a>(
        &'a self,
        org: OrgId,
        process: ProcessId,
        who: &'a str,
        reason: &'a str,
    ) -> Pending<'a, ()> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            fail::fail_process(&client, org, process, who, reason)
                .await
                .map(|_| ())
                .map_err(console_error)
        })
    }

    fn create_key(&self, org: OrgId) -> Pending<'_, String> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let created = service::create_key(&client, org)
                .await
                .map_err(console_error)?;
            Ok(created.api_key)
        })
    }

    fn create_webhook<'a>(
        &'a self,
        org: OrgId,
        url: &'a str,
        who: &'a str,
    ) -> Pending<'a, (i64, String)> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let created =
                webhooks::create(&client, org, url, Some(who), self.allow_private_webhooks)
                    .await
                    .map_err(console_error)?;
            Ok((created.id, created.secret))
        })
    }

    fn replay<'a>(&'a self, r: Replay<'a>) -> Pending<'a, ProcessId, ReplayError> {
        Box::pin(async move {
            let submitted = self
                .publisher
                .submit(Submission {
                    org_id: r.org,
                    object_type: r.object_type,
                    kind: r.kind,
                    body: r.body,
                    idempotency_key: None,
                    request_id: None,
                    // An operator's replay is not held to the organization's cap.
                    max_open_processes: 0,
                    replay_of: Some(publisher::Replay {
                        dead_letter: r.dead_letter,
                        who: r.who,
                    }),
                })
                .await;
            submitted.map_err(|e| match e {
                PublishError::Request(e) => ReplayError::Refused(e.message),
                PublishError::AlreadyResolved => ReplayError::AlreadyResolved,
                e => ReplayError::Failed(e.to_string()),
            })
        })
    }
}
