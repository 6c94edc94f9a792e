//! `objectsync-ingest`: serve the API (default), apply migrations, run an
//! admin command, or probe a running ingest (container health checks).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use objectsync_infra::{Role, probe};
use objectsync_ingest::admin::cli::AdminCommand;

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
    /// Exit 0 if the ingest on this host is ready (its /readyz answers 200),
    /// 1 otherwise: a health check for images without curl.
    #[command(hide = true)]
    Probe {
        /// The port to probe (default: the one the settings give ingest).
        #[arg(long)]
        port: Option<u16>,
    },
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
        Command::Migrate => objectsync_ingest::run_migrate(config).await,
        Command::Admin(cmd) => objectsync_ingest::run_admin(config, cmd).await,
        Command::Probe { port } => probe::run(Role::Ingest, config, port).await,
    }
}
