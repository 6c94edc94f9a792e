//! A throwaway PostgreSQL server that accepts TLS connections only, for the
//! tests of `sslmode` and friends: a scratch server (`scratch_pg`), a test
//! CA and a server certificate it signed (made with the `openssl` command),
//! `ssl = on`, one `hostssl` line and no `host` line, on a free loopback
//! port. The machine's own PostgreSQL is never touched.
//!
//! Dropping the [`TlsPostgres`] stops the server and removes the directory,
//! also when the test panics.

use std::path::PathBuf;

use crate::scratch::test_certificates;
use crate::scratch_pg::ScratchServer;

/// A running TLS-only PostgreSQL, with the certificates that go with it.
pub struct TlsPostgres {
    server: ScratchServer,
}

impl TlsPostgres {
    /// Starts one; panics, saying what failed, if it cannot.
    pub fn start() -> Self {
        let server = ScratchServer::init("tls-pg", "");
        let dir = server.dir().display().to_string();
        test_certificates(server.dir());
        // The configuration names the certificates, so it is appended once
        // they exist (a later line wins over `init`'s).
        let conf = format!(
            "\nssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             max_connections = 20\nshared_buffers = 16MB\n"
        );
        server.configure(&conf);
        // TLS or nothing: no `host` line, so a plain connection is refused.
        server.write_hba("local all all trust\nhostssl all all 127.0.0.1/32 trust\n");
        server.hand_over();
        server.boot();
        Self { server }
    }

    /// The port it listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `postgres://postgres@{host}:{port}/{database}?{params}`.
    pub fn url(&self, host: &str, database: &str, params: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/{database}?{params}",
            self.port()
        )
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.server.dir().join("ca.pem")
    }

    /// A CA that signed nothing the server has (PEM).
    pub fn other_ca(&self) -> PathBuf {
        self.server.dir().join("other-ca.pem")
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        self.server.log()
    }
}
