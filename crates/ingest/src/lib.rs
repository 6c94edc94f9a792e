//! The ingest service: the public HTTP API (Brevo-compatible `/v3`), the
//! AMQP inbox, the admin API and CLI, and the embeddable [`Publisher`].

mod accept;
pub mod admin;
pub mod api;
pub mod auth;
mod console;
pub mod error;
pub mod gauges;
pub mod idempotency;
mod inbox;
mod key_use;
mod lanes;
mod limits;
mod linger;
pub mod openapi;
pub mod publisher;
mod request_body;
pub mod serve;
pub mod startup;
pub mod state;
mod trace;
mod track;
pub mod web;

pub use publisher::{PublishError, Publisher, Replay, Submission};
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

/// How every subcommand of `objectsync-ingest` starts: settings (from
/// `config` and the environment), then logging. `Err` is the exit code of a
/// bad configuration (2), already reported.
pub fn start(
    config: Option<&std::path::Path>,
) -> Result<objectsync_infra::Settings, std::process::ExitCode> {
    use objectsync_infra::{Role, Settings, telemetry};
    match Settings::load(Role::Ingest, config) {
        Ok(s) => {
            telemetry::init(s.log.format);
            Ok(s)
        }
        Err(e) => {
            eprintln!("objectsync-ingest: {e}");
            Err(std::process::ExitCode::from(2))
        }
    }
}

/// How every subcommand ends: a failure is logged and printed, exit code 1.
pub fn finish<E: std::fmt::Display>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "objectsync-ingest failed");
            eprintln!("objectsync-ingest: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Writes `text` and a newline to standard output. A reader that went away
/// (`objectsync-ingest admin list-types | head -5`) ends the command
/// quietly and successfully, as command-line tools do, instead of a panic.
pub fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}

/// `objectsync-ingest migrate`: applies pending migrations and says how
/// many; with `database.app_password` set, lets the app role log in with
/// it (see `objectsync_infra::db::setup`).
pub async fn run_migrate(config: Option<&std::path::Path>) -> std::process::ExitCode {
    use objectsync_infra::db;
    match start(config) {
        Ok(settings) => finish(
            db::setup(&settings.database)
                .await
                .map_err(|e| e.to_string())
                .and_then(|n| {
                    let mut said = format!("{n} migration(s) applied");
                    if settings.database.app_password.is_some() {
                        said.push_str(&format!(
                            "\n{} may log in with the password given",
                            db::APP_ROLE
                        ));
                    }
                    print_out(&said).map_err(|e| e.to_string())
                }),
        ),
        Err(code) => code,
    }
}

/// `objectsync-ingest admin …`: runs the command and prints its answer as
/// pretty JSON.
pub async fn run_admin(
    config: Option<&std::path::Path>,
    command: admin::cli::AdminCommand,
) -> std::process::ExitCode {
    match start(config) {
        Ok(settings) => finish(
            admin::cli::run(&settings, command)
                .await
                .map_err(|e| e.to_string())
                .and_then(|out| print_out(&format!("{out:#}")).map_err(|e| e.to_string())),
        ),
        Err(code) => code,
    }
}

/// The whole life of a serving ingest process: [`start`], [`serve`],
/// [`finish`]. What `objectsync-ingest serve` runs, and what tools that run
/// ingest as a child process call.
pub async fn run_process(config: Option<&std::path::Path>) -> std::process::ExitCode {
    match start(config) {
        Ok(settings) => finish(serve(&settings).await),
        Err(code) => code,
    }
}
