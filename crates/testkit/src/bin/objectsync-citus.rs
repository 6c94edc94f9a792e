//! `objectsync-citus COMMAND [ARGS...]`: runs a command against a scratch
//! Citus cluster (a coordinator and two workers on loopback), with
//! `OBJECTSYNC_TEST_CITUS` set to the coordinator's `postgres` database so
//! that every test sandbox is made there; stops the cluster and removes its
//! directories afterwards, and exits with the command's status.
//!
//! ```text
//! objectsync-citus cargo test -p objectsync-ingest --test api
//! objectsync-citus --workers 0 objectsync-bench --quick   # one server, same settings
//! ```
//!
//! `--workers N` (default 2) sets how many workers join the coordinator;
//! with 0 the coordinator has none, so `migrate` leaves the schema as on
//! plain PostgreSQL: a baseline on a server set up like the cluster's.

use std::process::ExitCode;

use objectsync_testkit::citus::{CITUS_ENV, CitusCluster};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut workers = 2;
    if args.first().is_some_and(|a| a == "--workers") {
        match args.get(1).and_then(|n| n.parse().ok()) {
            Some(n) => workers = n,
            None => {
                eprintln!("objectsync-citus: --workers needs a number");
                return ExitCode::from(2);
            }
        }
        args.drain(..2);
    }
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: objectsync-citus [--workers N] COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let cluster = CitusCluster::start(workers);
    eprintln!(
        "citus: coordinator on 127.0.0.1:{}, workers on {:?}",
        cluster.port(),
        cluster.worker_ports()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let code = runtime.block_on(async {
        let mut child = match tokio::process::Command::new(program)
            .args(rest)
            .env(CITUS_ENV, cluster.url("postgres"))
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                eprintln!("{program}: {e}");
                return ExitCode::from(127);
            }
        };
        tokio::select! {
            status = child.wait() => match status.ok().and_then(|s| s.code()) {
                Some(0) => ExitCode::SUCCESS,
                Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
                None => ExitCode::FAILURE,
            },
            // Interrupted: stop the command, then the cluster (on drop).
            _ = tokio::signal::ctrl_c() => {
                let _ = child.kill().await;
                ExitCode::from(130)
            }
        }
    });
    drop(cluster);
    code
}
