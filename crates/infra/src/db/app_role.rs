//! The app role: what ingest, the workers and the admin CLI can run as, so
//! that a service that is broken into (or a wrong statement) cannot change
//! the schema. Migration V39 creates it without login and grants it the rows
//! of every table and sequence; [`set_password`] lets it log in.
//!
//! The migrations themselves need the schema's owner. A service connected
//! as the app role therefore never runs them: it finds the schema current
//! and goes on, or behind and waits for (or asks for) `objectsync-ingest
//! migrate` run as the owner (see [`super::migrate_if_behind`]).

use secrecy::{ExposeSecret, SecretString};

use super::DbError;
use crate::settings::DatabaseSettings;

/// The role V39 creates. Roles belong to the cluster: every objectsync
/// database of one server shares it (each grants it its own rows).
pub const APP_ROLE: &str = "objectsync_app";

/// What `objectsync-ingest migrate` does, as the schema's owner: applies
/// pending migrations (creating the database if missing), then, when
/// `database.app_password` is set, lets [`APP_ROLE`] log in with it.
/// Returns how many migrations were applied.
pub async fn setup(settings: &DatabaseSettings) -> Result<usize, DbError> {
    let url = settings.url.expose_secret();
    let applied = super::migrate(url).await?;
    if let Some(password) = &settings.app_password {
        set_password(&super::connect(url).await?, password).await?;
    }
    Ok(applied)
}

/// Lets [`APP_ROLE`] log in with `password`. The password leaves this
/// process only as its SCRAM-SHA-256 verifier, made here with a random
/// salt, so it appears in no server log or `pg_stat_activity` (as psql's
/// `\password` does it). Idempotent: running it again with a new password
/// is how to change it (sessions already open stay open).
pub async fn set_password(
    client: &tokio_postgres::Client,
    password: &SecretString,
) -> Result<(), DbError> {
    let verifier = postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
    // The verifier holds base64 and `$:` only, but quote it anyway: a
    // statement like this one cannot take a bind parameter.
    let statement = format!(
        "alter role {APP_ROLE} with login password '{}'",
        verifier.replace('\'', "''")
    );
    client.batch_execute(&statement).await?;
    tracing::info!(
        role = APP_ROLE,
        "the app role may log in with the password given"
    );
    Ok(())
}

/// Whether the session's user may create objects in the schema `public`,
/// which every migration needs: false for the app role.
pub(super) async fn may_change_schema(client: &tokio_postgres::Client) -> Result<bool, DbError> {
    let row = client
        .query_one("select has_schema_privilege('public', 'create')", &[])
        .await?;
    Ok(row.get(0))
}
