//! A throwaway PostgreSQL primary with a hot standby streaming from it, for
//! the tests of reads on a standby: `initdb` into a temporary directory, a
//! `replication` line in the primary's `pg_hba.conf`, a standby made with
//! `pg_basebackup -R` (which writes `primary_conninfo` and `standby.signal`),
//! each on a free loopback port of its own. The machine's own PostgreSQL is
//! never touched (it accepts no replication connections, and stays so).
//!
//! Dropping the [`StandbyPair`] stops both servers and removes the
//! directory, also when the test panics.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where PostgreSQL's server programs are (Debian's layout).
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running primary and its streaming standby.
pub struct StandbyPair {
    dir: PathBuf,
    primary: u16,
    standby: u16,
    /// As root, the servers run as `postgres` (initdb refuses root).
    as_postgres: bool,
}

impl StandbyPair {
    /// Starts both; panics, saying what failed, if it cannot.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "objectsync-standby-pg-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let pair = Self {
            dir,
            primary: free_port(),
            standby: free_port(),
            as_postgres: is_root(),
        };
        if pair.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pair.dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the test servers' directory");
        }
        pair.init_primary();
        pair.start_server("primary");
        pair.run(&[
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            &pair.primary.to_string(),
            "-U",
            "postgres",
            "-D",
            &pair.data("standby"),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ]);
        // The copied configuration names the primary's port; a later line
        // wins.
        append(
            &pair.dir.join("standby/postgresql.conf"),
            &format!("\nport = {}\n", pair.standby),
        );
        pair.start_server("standby");
        pair
    }

    /// `postgres://postgres@127.0.0.1:{primary}/{database}`.
    pub fn primary_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.primary)
    }

    /// `postgres://postgres@127.0.0.1:{standby}/{database}`.
    pub fn standby_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.standby)
    }

    /// Stops the standby the way an operator or a crash-free failure does:
    /// `pg_ctl stop -m fast`, which ends every session on it.
    pub fn stop_standby(&self) {
        self.run(&[
            "pg_ctl",
            "-D",
            &self.data("standby"),
            "-m",
            "fast",
            "-w",
            "stop",
        ]);
    }

    /// Starts the standby again (it resumes streaming where it stopped).
    pub fn start_standby(&self) {
        self.start_server("standby");
    }

    /// Both servers' logs, for a failing test's message.
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!(
            "--- primary\n{}\n--- standby\n{}",
            read("primary.log"),
            read("standby.log")
        )
    }

    fn data(&self, server: &str) -> String {
        self.dir.join(server).display().to_string()
    }

    fn init_primary(&self) {
        let data = self.data("primary");
        self.run(&[
            "initdb",
            "-D",
            &data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        // Settings a standby must match or exceed (max_connections) are
        // copied to it with the rest by pg_basebackup.
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n\
             fsync = off\nmax_connections = 60\nshared_buffers = 16MB\n",
            self.primary,
            self.dir.display()
        );
        append(&Path::new(&data).join("postgresql.conf"), &conf);
        std::fs::write(
            Path::new(&data).join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 trust\n\
             host replication all 127.0.0.1/32 trust\n",
        )
        .expect("pg_hba.conf");
    }

    fn start_server(&self, server: &str) {
        let log = self.dir.join(format!("{server}.log")).display().to_string();
        self.run(&[
            "pg_ctl",
            "-D",
            &self.data(server),
            "-l",
            &log,
            "-w",
            "start",
        ]);
    }

    /// Runs one of PostgreSQL's programs, as `postgres` when we are root.
    fn run(&self, args: &[&str]) {
        let output = self
            .command(args)
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

    fn command(&self, args: &[&str]) -> Command {
        let program = format!("{BIN}/{}", args[0]);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &program]);
            c
        } else {
            Command::new(&program)
        };
        command.args(&args[1..]);
        command
    }
}

impl Drop for StandbyPair {
    fn drop(&mut self) {
        for server in ["standby", "primary"] {
            if self.dir.join(server).join("postmaster.pid").exists() {
                let _ = self
                    .command(&[
                        "pg_ctl",
                        "-D",
                        &self.data(server),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ])
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(text.as_bytes()).expect("postgresql.conf");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A port nothing listens on now (the server takes it a moment later).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
