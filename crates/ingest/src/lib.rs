//! The ingest service: the public HTTP API (Brevo-compatible `/v3`), the
//! admin API and CLI, and the embeddable [`Publisher`].

pub mod admin;
pub mod api;
pub mod auth;
pub mod error;
pub mod idempotency;
pub mod openapi;
pub mod publisher;
pub mod startup;
pub mod state;
mod trace;
mod track;

pub use publisher::{PublishError, Publisher, Submission};
pub use startup::Application;

/// Serves until SIGTERM or SIGINT: migrations, topology, the API, then a
/// graceful stop. What `objectsync-ingest serve` runs, and what tools that
/// run ingest as a child process call.
pub async fn serve(settings: &objectsync_infra::Settings) -> Result<(), startup::StartupError> {
    let cancel = tokio_util::sync::CancellationToken::new();
    objectsync_infra::shutdown::cancel_on_signal(cancel.clone());
    let app = Application::build(settings, &cancel).await?;
    app.run_until(cancel).await?;
    Ok(())
}

/// The whole life of a serving ingest process: settings (from `config` and
/// the environment), logging, then [`serve`]. For tools that run ingest as a
/// child process; `objectsync-ingest` itself also has other subcommands.
pub async fn run_process(config: Option<&std::path::Path>) -> std::process::ExitCode {
    use objectsync_infra::{Role, Settings, telemetry};
    let settings = match Settings::load(Role::Ingest, config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("objectsync-ingest: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(settings.log.format);
    match serve(&settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "objectsync-ingest failed");
            eprintln!("objectsync-ingest: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
