//! `objectsync-faults`: the fault suite (see the crate docs). Exits 1 if any
//! guarantee was broken. Its hidden `worker` and `ingest` modes are how it
//! runs workers and the inbox's ingest replica as child processes.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use objectsync_faults::{BROKER_RESTART, DATABASE_RESTART, Options};

#[derive(Parser)]
#[command(
    name = "objectsync-faults",
    about = "Load objectsync while killing workers and an ingest replica and restarting RabbitMQ and PostgreSQL, then check that nothing was lost or doubled"
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Concurrent producers.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Producers over the AMQP inbox, whose ingest replica (a child
    /// process consuming the inbox) is SIGKILLed every other worker kill;
    /// 0 leaves the inbox out.
    #[arg(long, default_value_t = 2)]
    inbox_producers: usize,
    /// Ranges of 100 records per producer. Few ranges keep several batches
    /// of one range in flight at once, which is what tests acceptance order
    /// (with 3, a run without the ordering gate gets counts wrong).
    #[arg(long, default_value_t = 3)]
    ranges: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Seconds between worker kills.
    #[arg(long, default_value_t = 3)]
    kill_every: u64,
    /// Do not restart RabbitMQ and PostgreSQL (worker kills only).
    #[arg(long)]
    no_restarts: bool,
    /// Shell command that restarts RabbitMQ.
    #[arg(long, default_value = BROKER_RESTART)]
    broker_restart: String,
    /// Shell command that restarts PostgreSQL.
    #[arg(long, default_value = DATABASE_RESTART)]
    database_restart: String,
    /// Seconds processes may take to end after the load stops.
    #[arg(long, default_value_t = 120)]
    settle: u64,
    /// Start three RabbitMQ nodes of its own on loopback, cluster them,
    /// and SIGKILL (then restart) the node leading the most queues, twice,
    /// instead of restarting the machine's RabbitMQ and PostgreSQL.
    #[arg(long, conflicts_with = "citus")]
    cluster: bool,
    /// Start a Citus coordinator and two workers of its own on loopback
    /// for the database (or, run under `objectsync-citus`, use its
    /// cluster), and kill only objectsync's workers: none of the machine's
    /// services is restarted.
    #[arg(long)]
    citus: bool,
}

#[derive(Subcommand)]
enum Mode {
    /// Run one worker (used for the suite's child processes).
    #[command(hide = true)]
    Worker,
    /// Run one ingest (used for the inbox's replica).
    #[command(hide = true)]
    Ingest,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.mode {
        Some(Mode::Worker) => return objectsync_worker::run_process(None).await,
        Some(Mode::Ingest) => return objectsync_ingest::run_process(None).await,
        None => {}
    }
    // Ingest runs in this process and logs nothing unless asked: with
    // RUST_LOG set, its log (and the suite's libraries') goes to stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        objectsync_infra::telemetry::init(objectsync_infra::settings::LogFormat::Auto);
    }
    let opts = Options {
        duration: Duration::from_secs(cli.duration),
        producers: cli.producers,
        inbox_producers: cli.inbox_producers,
        ranges: cli.ranges.max(1),
        workers: cli.workers.max(1),
        kill_every: Duration::from_secs(cli.kill_every.max(1)),
        restart_services: !cli.no_restarts,
        broker_cmd: cli.broker_restart,
        database_cmd: cli.database_restart,
        settle: Duration::from_secs(cli.settle),
        cluster: cli.cluster,
        citus: cli.citus,
    };
    match objectsync_faults::run(&opts).await {
        Ok(true) => {
            println!("PASSED: nothing lost, nothing doubled, nothing stuck");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("FAILED: see the figures above");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("objectsync-faults: {e}");
            ExitCode::FAILURE
        }
    }
}
