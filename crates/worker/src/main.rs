//! `objectsync-worker`: consume batches and apply them until SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use objectsync_infra::{Role, Settings, shutdown, telemetry};
use objectsync_worker::Worker;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "objectsync-worker",
    version,
    about = "objectsync worker: applies batches"
)]
struct Cli {
    /// A TOML file of settings (between the defaults and the environment).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(Role::Worker, cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("objectsync-worker: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log.format);
    let cancel = CancellationToken::new();
    shutdown::cancel_on_signal(cancel.clone());
    let result = match Worker::build(&settings).await {
        Ok(worker) => worker.run_until(cancel).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "objectsync-worker failed");
            eprintln!("objectsync-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
