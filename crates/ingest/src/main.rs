//! `objectsync-ingest`: serve the API (default), apply migrations, or run an
//! admin command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use objectsync_infra::db;
use objectsync_ingest::admin::cli::{self, AdminCommand};
use objectsync_ingest::finish;

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
    let config = cli.config.as_deref();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => objectsync_ingest::run_process(config).await,
        Command::Migrate => match objectsync_ingest::start(config) {
            Ok(settings) => finish(
                db::migrate(&settings.database.url)
                    .await
                    .map(|n| println!("{n} migration(s) applied")),
            ),
            Err(code) => code,
        },
        Command::Admin(cmd) => match objectsync_ingest::start(config) {
            Ok(settings) => finish(
                cli::run(&settings, cmd)
                    .await
                    .map(|out| println!("{out:#}")),
            ),
            Err(code) => code,
        },
    }
}
