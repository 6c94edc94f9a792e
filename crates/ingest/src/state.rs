//! What every handler can reach.

use std::sync::Arc;

use deadpool_postgres::Pool;

use crate::publisher::Publisher;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub publisher: Arc<Publisher>,
    /// `None` disables the admin API.
    pub admin_token: Option<Arc<str>>,
    /// The default per-organization limits.
    pub limits: objectsync_infra::settings::LimitSettings,
    /// The queue depths last read (see `gauges`), for the console.
    pub queues: crate::gauges::Queues,
    /// How often workers report themselves (`worker.heartbeat_secs`): a
    /// worker not seen for three of these is gone.
    pub worker_heartbeat: std::time::Duration,
    /// The console's settled minutes of ended processes.
    pub(crate) ended: Arc<crate::console::ended::EndedCache>,
    /// Wrong admin tokens per client address (admin API and console login).
    pub(crate) token_guard: Arc<crate::token_guard::TokenGuard>,
}
