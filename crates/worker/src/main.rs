//! `objectsync-worker`: consume batches and apply them until SIGTERM, or
//! probe a running worker (container health checks).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use objectsync_infra::{Role, probe};

#[derive(Parser)]
#[command(
    name = "objectsync-worker",
    version,
    about = "objectsync worker: applies batches"
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
    /// Exit 0 if the worker on this host is ready (its /readyz answers 200),
    /// 1 otherwise: a health check for images without curl.
    #[command(hide = true)]
    Probe {
        /// The port to probe (default: the one the settings give a worker).
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
    match cli.command {
        None => objectsync_worker::run_process(config).await,
        Some(Command::Probe { port }) => probe::run(Role::Worker, config, port).await,
    }
}
