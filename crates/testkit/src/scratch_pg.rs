//! One throwaway PostgreSQL 15 server on a free loopback port, in a
//! temporary directory: `initdb`, extra `postgresql.conf` lines, start,
//! `psql`, and stop-and-remove on drop. The Citus cluster is three of
//! these; the machine's own PostgreSQL is never touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::scratch::{chown, free_port, is_root};

/// Where PostgreSQL's server programs are (Debian's layout).
pub(crate) const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running scratch server. Dropping it stops it (immediate mode) and
/// removes its directory, also when a test panics.
pub(crate) struct ScratchServer {
    dir: PathBuf,
    port: u16,
    /// As root, the server runs as `postgres` (initdb refuses root).
    as_postgres: bool,
}

impl ScratchServer {
    /// Initializes a cluster (trust authentication, user `postgres`) with
    /// `conf` appended to its `postgresql.conf`, and starts it.
    pub(crate) fn start(name: &str, conf: &str) -> Self {
        let server = Self::init(name, conf);
        server.boot();
        server
    }

    /// Initializes a cluster as [`ScratchServer::start`] does, without
    /// starting it: the caller writes what else it needs into its
    /// directory (certificates, `pg_hba.conf`), then calls
    /// [`ScratchServer::boot`].
    pub(crate) fn init(name: &str, conf: &str) -> Self {
        let server = Self::empty(name);
        let data = server.data().display().to_string();
        server.run(&[
            "initdb",
            "-D",
            &data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        let all = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n{conf}\n",
            server.port,
            server.dir.display()
        );
        append(&server.data().join("postgresql.conf"), &all);
        server
    }

    /// A hot standby of `primary` (whose `pg_hba.conf` must allow
    /// replication from 127.0.0.1), made with `pg_basebackup -R`, which
    /// copies the primary's configuration and writes `primary_conninfo`
    /// and `standby.signal`; not started yet.
    pub(crate) fn standby_of(primary: &ScratchServer, name: &str) -> Self {
        let server = Self::empty(name);
        server.run(&[
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            &primary.port.to_string(),
            "-U",
            "postgres",
            "-D",
            &server.data().display().to_string(),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ]);
        // The copied configuration names the primary's port and socket
        // directory; a later line wins.
        append(
            &server.data().join("postgresql.conf"),
            &format!(
                "\nport = {}\nunix_socket_directories = '{}'\n",
                server.port,
                server.dir.display()
            ),
        );
        server
    }

    /// A directory of its own (owned by `postgres` when we are root) and a
    /// free port; no cluster yet.
    fn empty(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("objectsync-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let server = Self {
            dir,
            port: free_port(),
            as_postgres: is_root(),
        };
        server.hand_over();
        server
    }

    /// Gives the directory, and what the caller wrote into it, to the
    /// user the server runs as (when we are root).
    pub(crate) fn hand_over(&self) {
        if self.as_postgres {
            chown(&self.dir, "postgres");
        }
    }

    /// Starts the server (`pg_ctl start`, waiting until it accepts
    /// connections).
    pub(crate) fn boot(&self) {
        let data = self.data().display().to_string();
        let log = self.dir.join("log").display().to_string();
        self.run(&["pg_ctl", "-D", &data, "-l", &log, "-w", "start"]);
    }

    /// Stops the server (`pg_ctl stop -m {mode}`, waiting until it has).
    pub(crate) fn stop(&self, mode: &str) {
        let data = self.data().display().to_string();
        self.run(&["pg_ctl", "-D", &data, "-m", mode, "-w", "stop"]);
    }

    /// The directory the data directory and the log are in.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `text` to the cluster's `postgresql.conf` (a later line
    /// wins over an earlier one).
    pub(crate) fn configure(&self, text: &str) {
        append(&self.data().join("postgresql.conf"), text);
    }

    /// Replaces the cluster's `pg_hba.conf` with `lines`.
    pub(crate) fn write_hba(&self, lines: &str) {
        std::fs::write(self.data().join("pg_hba.conf"), lines).expect("pg_hba.conf");
    }

    /// The port it listens on (127.0.0.1 only).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The server's log, for a failure's message.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Runs `sql` (one or more statements) with `psql` in `database`;
    /// panics with psql's message and the server's log if it fails.
    pub(crate) fn psql(&self, database: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let output = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-c", sql])
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            output.status.success(),
            "psql on port {port}: {sql}: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs one of PostgreSQL's programs, as `postgres` when we are root.
    fn run(&self, args: &[&str]) {
        let output = self
            .program(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        assert!(
            output.status.success(),
            "{} failed: {}{}\n{}",
            args[0],
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }

    fn program(&self, name: &str) -> Command {
        let program = format!("{BIN}/{name}");
        match self.as_postgres {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--", &program]);
                c
            }
            false => Command::new(&program),
        }
    }
}

impl Drop for ScratchServer {
    fn drop(&mut self) {
        let data = self.data();
        if data.join("postmaster.pid").exists() {
            let _ = self
                .program("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("postgresql.conf");
    file.write_all(text.as_bytes()).expect("postgresql.conf");
}
