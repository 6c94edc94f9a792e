//! What the scratch servers of the tests (a TLS-only PostgreSQL, RabbitMQ
//! nodes) share: a test CA and a server certificate it signed, a free
//! loopback port, and whether we are root (then the server runs as its
//! own system user, as its packaged scripts want).

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// Writes into `dir` a test CA (`ca.pem`, `ca.key`), a second CA that signs
/// nothing (`other-ca.pem`), and a server certificate the first one signed
/// for `localhost` and `127.0.0.1` (`server.crt`, `server.key`), made with
/// the `openssl` command; the key is readable by its owner only.
pub(crate) fn test_certificates(dir: &Path) {
    const EC: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &format!(
                "req -x509 {EC} -days 2 -keyout {ca}.key -out {ca}.pem \
                 -subj /CN=objectsync-test-{ca} \
                 -addext basicConstraints=critical,CA:TRUE \
                 -addext keyUsage=critical,keyCertSign,cRLSign"
            ),
        );
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("server.ext");
    openssl(
        dir,
        &format!("req {EC} -keyout server.key -out server.csr -subj /CN=localhost"),
    );
    openssl(
        dir,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -extfile server.ext -out server.crt",
    );
    // PostgreSQL refuses a key others can read.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod server.key");
}

/// Runs `openssl` with `args` (split at white space) in `dir`.
fn openssl(dir: &Path, args: &str) {
    let output = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("the openssl command");
    assert!(
        output.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Gives `dir` and everything in it to `user` (a server that drops to its
/// own user must read and write there).
pub(crate) fn chown(dir: &Path, user: &str) {
    let status = Command::new("chown")
        .args(["-R", &format!("{user}:{user}")])
        .arg(dir)
        .status()
        .expect("chown");
    assert!(status.success(), "chown of {} failed", dir.display());
}

/// A port nothing listens on now (the server takes it a moment later).
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
