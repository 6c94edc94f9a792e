//! A throwaway PostgreSQL primary with a hot standby streaming from it, for
//! the tests of reads on a standby: two scratch servers (`scratch_pg`), a
//! `replication` line in the primary's `pg_hba.conf`, the standby made with
//! `pg_basebackup -R` (which writes `primary_conninfo` and
//! `standby.signal`), each on a free loopback port of its own. The
//! machine's own PostgreSQL is never touched (it accepts no replication
//! connections, and stays so).
//!
//! Dropping the [`StandbyPair`] stops both servers and removes their
//! directories, also when the test panics.

use crate::scratch_pg::ScratchServer;

/// A running primary and its streaming standby.
pub struct StandbyPair {
    // Declared first, so dropped first: the standby stops before its
    // primary.
    standby: ScratchServer,
    primary: ScratchServer,
}

impl StandbyPair {
    /// Starts both; panics, saying what failed, if it cannot.
    pub fn start() -> Self {
        // Settings a standby must match or exceed (max_connections) are
        // copied to it with the rest by pg_basebackup; a base backup wants
        // full page writes.
        let primary = ScratchServer::init(
            "standby-primary",
            "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n\
             full_page_writes = on\nmax_connections = 60\nshared_buffers = 16MB",
        );
        primary.write_hba(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n\
             host replication all 127.0.0.1/32 trust\n",
        );
        primary.boot();
        let standby = ScratchServer::standby_of(&primary, "standby-standby");
        standby.boot();
        Self { standby, primary }
    }

    /// `postgres://postgres@127.0.0.1:{primary}/{database}`.
    pub fn primary_url(&self, database: &str) -> String {
        url(&self.primary, database)
    }

    /// `postgres://postgres@127.0.0.1:{standby}/{database}`.
    pub fn standby_url(&self, database: &str) -> String {
        url(&self.standby, database)
    }

    /// Stops the standby the way an operator or a crash-free failure does:
    /// `pg_ctl stop -m fast`, which ends every session on it.
    pub fn stop_standby(&self) {
        self.standby.stop("fast");
    }

    /// Starts the standby again (it resumes streaming where it stopped).
    pub fn start_standby(&self) {
        self.standby.boot();
    }

    /// Both servers' logs, for a failing test's message.
    pub fn log(&self) -> String {
        format!(
            "--- primary\n{}\n--- standby\n{}",
            self.primary.log(),
            self.standby.log()
        )
    }
}

fn url(server: &ScratchServer, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{}/{database}", server.port())
}
