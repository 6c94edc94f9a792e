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
        let dir = std::env::temp_dir().join(format!("objectsync-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let server = Self {
            dir,
            port: free_port(),
            as_postgres: is_root(),
        };
        if server.as_postgres {
            chown(&server.dir, "postgres");
        }
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
        let log = server.dir.join("log").display().to_string();
        server.run(&["pg_ctl", "-D", &data, "-l", &log, "-w", "start"]);
        server
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

    fn data(&self) -> PathBuf {
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
