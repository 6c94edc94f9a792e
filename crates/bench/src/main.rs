//! `objectsync-bench`: see the crate docs. `--quick` finishes in under a
//! minute; `--json` adds one JSON object with every figure as the last line.
//! Its hidden `ingest` and `worker` modes are how it runs the services as
//! separate processes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use objectsync_bench::Options;

#[derive(Parser)]
#[command(
    name = "objectsync-bench",
    about = "Throughput of objectsync against the database's own ceiling, in one run"
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Records per pass (inserts, then updates of the same records).
    #[arg(long, default_value_t = 300_000)]
    records: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Concurrent producers posting 1,000-record batches.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Connections of the raw-ceiling and naive stages.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// A short run (20,000 records, shorter ingest runs): under a minute.
    #[arg(long)]
    quick: bool,
    /// Print every figure as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Mode {
    /// Serve ingest (used for the bench's child process).
    #[command(hide = true)]
    Ingest,
    /// Run one worker (used for the bench's child processes).
    #[command(hide = true)]
    Worker,
}

/// mimalloc: batches are parsed into thousands of small allocations, where
/// it measured faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.mode {
        Some(Mode::Worker) => return objectsync_worker::run_process(None).await,
        Some(Mode::Ingest) => return objectsync_ingest::run_process(None).await,
        None => {}
    }
    let opts = Options {
        records: if cli.quick {
            20_000
        } else {
            cli.records.max(1000)
        },
        workers: cli.workers.max(1),
        producers: cli.producers.max(1),
        connections: cli.connections.max(1),
        ingest_secs: if cli.quick { 3 } else { 5 },
        lone_batches: if cli.quick { 5 } else { 15 },
    };
    match objectsync_bench::run(&opts).await {
        Ok(figures) => {
            println!("{}", figures.table());
            if cli.json {
                println!("{}", figures.json());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("objectsync-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
