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
    /// Wrong admin tokens per client address (admin API and console login).
    pub(crate) token_guard: Arc<objectsync_infra::token_guard::TokenGuard>,
    /// Whether webhook URLs may name private addresses
    /// (`webhooks.allow_private_addresses`).
    pub allow_private_webhooks: bool,
}
