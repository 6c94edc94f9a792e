//! A throwaway PostgreSQL server that accepts TLS connections only, for the
//! tests of `sslmode` and friends: `initdb` into a temporary directory, a
//! test CA and a server certificate it signed (made with the `openssl`
//! command), `ssl = on`, one `hostssl` line and no `host` line, on a free
//! loopback port. The machine's own PostgreSQL is never touched.
//!
//! Dropping the [`TlsPostgres`] stops the server and removes the directory,
//! also when the test panics.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::scratch::{chown, free_port, is_root, test_certificates};

/// Where PostgreSQL's server programs are (Debian's layout).
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running TLS-only PostgreSQL, with the certificates that go with it.
pub struct TlsPostgres {
    dir: PathBuf,
    port: u16,
    /// As root, the server runs as `postgres` (initdb refuses root).
    as_postgres: bool,
}

impl TlsPostgres {
    /// Starts one; panics, saying what failed, if it cannot.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("objectsync-tls-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let as_postgres = is_root();
        let server = Self {
            dir,
            port: free_port(),
            as_postgres,
        };
        test_certificates(&server.dir);
        server.init();
        server.run(&[
            "pg_ctl",
            "-D",
            &server.data().display().to_string(),
            "-l",
            &server.dir.join("log").display().to_string(),
            "-w",
            "start",
        ]);
        server
    }

    /// The port it listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@{host}:{port}/{database}?{params}`.
    pub fn url(&self, host: &str, database: &str, params: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/{database}?{params}",
            self.port
        )
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that signed nothing the server has (PEM).
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&self) {
        if self.as_postgres {
            chown(&self.dir, "postgres");
        }
        let data = self.data().display().to_string();
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
        let dir = self.dir.display();
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             fsync = off\nmax_connections = 20\nshared_buffers = 16MB\n",
            self.port
        );
        append(&self.data().join("postgresql.conf"), &conf);
        // TLS or nothing: no `host` line, so a plain connection is refused.
        std::fs::write(
            self.data().join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("pg_hba.conf");
    }

    /// Runs one of PostgreSQL's programs, as `postgres` when we are root.
    fn run(&self, args: &[&str]) {
        let program = format!("{BIN}/{}", args[0]);
        let mut command = match self.as_postgres {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--", &program]);
                c
            }
            false => Command::new(&program),
        };
        let output = command
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.data();
        if data.join("postmaster.pid").exists() {
            let program = format!("{BIN}/pg_ctl");
            let mut command = match self.as_postgres {
                true => {
                    let mut c = Command::new("runuser");
                    c.args(["-u", "postgres", "--", &program]);
                    c
                }
                false => Command::new(&program),
            };
            let _ = command
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
