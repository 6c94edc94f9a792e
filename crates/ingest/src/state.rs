//! What every handler can reach.

use std::sync::Arc;

use deadpool_postgres::Pool;
use objectsync_infra::db::ReadPool;

use crate::publisher::Publisher;

#[derive(Clone)]
pub struct AppState {
    /// The primary: writes, and the reads that must see them (API keys,
    /// limits, processes, idempotency, the admin API).
    pub pool: Pool,
    /// The reads that tolerate a little lag (record lists): a hot standby
    /// when `database.read_url` names one, else `pool`.
    pub reads: ReadPool,
    pub publisher: Arc<Publisher>,
    /// `None` disables the admin API.
    pub admin_token: Option<Arc<str>>,
    /// The default per-organization limits.
    pub limits: objectsync_infra::settings::LimitSettings,
    /// Wrong admin tokens per client address (admin API and console login).
    pub(crate) token_guard: Arc<objectsync_infra::token_guard::TokenGuard>,
    /// Whether webhook URLs may name private addresses
    /// (`webhooks.allow_private_addresses`).
    pub allow_private_webhooks: bool,
    /// When each API key was last used, written in the background.
    pub(crate) key_use: Arc<crate::key_use::KeyUse>,
}
