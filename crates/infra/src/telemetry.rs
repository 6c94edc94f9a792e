//! Logging with `tracing`: human-readable on a terminal, JSON lines
//! otherwise, filtered by `RUST_LOG` (default `info`). Logs go to stderr so
//! that the admin CLI can print its answers on stdout.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// Used when `RUST_LOG` is unset: our own info, the libraries' warnings
/// (refinery and tokio-postgres narrate every start at info level), and
/// nothing from `lapin::channel`, which logs every channel the broker
/// closes as an ERROR, though a channel closed under a real operation fails
/// that operation, which objectsync reports itself; every start asks
/// whether the legacy dead queue exists with a passive declare, which the
/// broker answers by closing that throwaway channel. A `RUST_LOG` that does
/// not name lapin gets the same exclusion added.
const DEFAULT_FILTER: &str = "info,refinery_core=warn,tokio_postgres=warn,lapin::channel=off";

/// Installs the global subscriber. Calling it twice (as tests do) is harmless.
pub fn init(format: LogFormat) {
    let filter = match std::env::var("RUST_LOG") {
        // lapin::channel logs the broker's expected refusals (the start's
        // probe of the legacy dead queue) as ERRORs; a filter that does not
        // name lapin keeps them out, as the default does.
        Ok(own) if !own.contains("lapin") => {
            EnvFilter::try_new(format!("{own},lapin::channel=off"))
        }
        Ok(own) => EnvFilter::try_new(own),
        Err(_) => Ok(EnvFilter::new(DEFAULT_FILTER)),
    }
    .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
