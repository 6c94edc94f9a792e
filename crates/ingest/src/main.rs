//! `objectsync-ingest`: serve the API (default), apply migrations, or run an
//! admin command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use objectsync_infra::{Role, Settings, db, telemetry};
use objectsync_ingest::admin::cli::{self, AdminCommand};

#[derive(Parser)]
#[command(
    name = "objectsync-ingest",
    version,
    about = "objectsync ingest: the HTTP API"
)]
struct Cli {
    /// A TOML file of settings (between the defaults and the environment).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, declare the topology and serve (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Administer organizations, API keys and object types.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// mimalloc: batches are parsed into thousands of small allocations, where
/// it measured faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(Role::Ingest, cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("objectsync-ingest: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log.format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => objectsync_ingest::serve(&settings)
            .await
            .map_err(|e| e.to_string()),
        Command::Migrate => db::migrate(&settings.database.url)
            .await
            .map(|n| println!("{n} migration(s) applied"))
            .map_err(|e| e.to_string()),
        Command::Admin(cmd) => cli::run(&settings, cmd)
            .await
            .map(|out| println!("{out:#}"))
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "objectsync-ingest failed");
            eprintln!("objectsync-ingest: {e}");
            ExitCode::FAILURE
        }
    }
}
