//! `objectsync-bench`: see the crate docs. `--quick` runs every stage small
//! (a minute or two, most of it the large-table stage); `--json` adds one JSON
//! object with every figure as the last line; `--only-large` and
//! `--skip-large` run one part; `--only-retention` runs the retention stage
//! alone (days of traffic with a short retention, see `retention`).
//! Its hidden `ingest` and `worker` modes are how it runs the services as
//! separate processes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use objectsync_bench::{Options, Stages};

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
    /// A short run (20,000 records, shorter ingest runs, a 200,000-record
    /// large table with 50,000 updates).
    #[arg(long)]
    quick: bool,
    /// Records loaded into the large table [default: 3,000,000; 200,000 with --quick].
    #[arg(long)]
    large_records: Option<usize>,
    /// Random-key updates on the large table [default: 500,000; 50,000 with --quick].
    #[arg(long)]
    large_updates: Option<usize>,
    /// Run only the large-table stage.
    #[arg(long, conflicts_with = "skip_large")]
    only_large: bool,
    /// Run every stage but the large-table one.
    #[arg(long)]
    skip_large: bool,
    /// Run only the retention stage: `--days` days of `--day-secs` seconds
    /// of traffic at `--rate` batches a second, processes kept two days.
    #[arg(long, conflicts_with_all = ["only_large", "skip_large"])]
    only_retention: bool,
    /// Simulated days of the retention stage.
    #[arg(long, default_value_t = 8)]
    days: usize,
    /// Seconds of a simulated day (30 at least).
    #[arg(long, default_value_t = 30)]
    day_secs: u64,
    /// Batches (of 10 records) a second in the retention stage.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
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
    if cli.only_retention {
        let opts = objectsync_bench::retention::RetentionOptions {
            days: cli.days.max(1),
            day_secs: cli.day_secs,
            rate: cli.rate,
            workers: cli.workers.max(1),
        };
        return match objectsync_bench::retention::run(&opts).await {
            Ok(figures) => {
                println!("{}", figures.table());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("objectsync-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let opts = Options {
        stages: match (cli.only_large, cli.skip_large) {
            (true, _) => Stages::OnlyLarge,
            (_, true) => Stages::SkipLarge,
            _ => Stages::All,
        },
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
        contended_batches: if cli.quick { 20 } else { 100 },
        fairness_backlog: if cli.quick { 200 } else { 2_000 },
        fairness_tries: if cli.quick { 5 } else { 20 },
        large_records: cli
            .large_records
            .unwrap_or(if cli.quick { 200_000 } else { 3_000_000 })
            .max(1000),
        large_updates: cli
            .large_updates
            .unwrap_or(if cli.quick { 50_000 } else { 500_000 })
            .max(1),
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
