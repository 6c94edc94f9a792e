//! PostgreSQL over TLS with libpq's URL parameters, against a TLS-only
//! server of the test's own (see `objectsync_testkit::tls_postgres`).

use std::time::Duration;

use objectsync_infra::{Role, Settings, db};
use objectsync_testkit::tls_postgres::TlsPostgres;

/// Starts a server off the async runtime's threads (initdb takes seconds).
async fn server() -> TlsPostgres {
    tokio::task::spawn_blocking(TlsPostgres::start)
        .await
        .unwrap()
}

/// Whether the session `client` is on is encrypted, says the server.
async fn encrypted(client: &tokio_postgres::Client) -> bool {
    client
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_right_ca_connects_and_runs_migrations() {
    let pg = server().await;
    let url = pg.url(
        "localhost",
        "objectsync",
        &format!("sslmode=verify-full&sslrootcert={}", pg.ca().display()),
    );
    let applied = db::migrate(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", pg.log()));
    assert!(applied > 0);
    let settings = Settings::load_from(
        Role::Ingest,
        None,
        [("DATABASE_URL".to_owned(), url.clone())].into(),
    )
    .unwrap();
    let pool = db::pool(&settings.database).unwrap();
    assert_eq!(
        db::applied_version(&pool).await.unwrap(),
        Some(db::latest_migration())
    );
    assert!(encrypted(&pool.get().await.unwrap()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_connection_is_refused_by_a_tls_only_server() {
    let pg = server().await;
    let Err(e) = db::connect(&pg.url("127.0.0.1", "postgres", "sslmode=disable")).await else {
        panic!("sslmode=disable connected to a TLS-only server");
    };
    assert!(e.to_string().contains("no encryption"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_another_ca_signed_is_refused_saying_so() {
    let pg = server().await;
    for mode in ["verify-full", "verify-ca", "require"] {
        let params = format!("sslmode={mode}&sslrootcert={}", pg.other_ca().display());
        let e = db::connect(&pg.url("localhost", "postgres", &params))
            .await
            .err()
            .unwrap_or_else(|| panic!("sslmode={mode} accepted a certificate of another CA"));
        assert!(
            e.to_string()
                .contains("TLS certificate verify failed: unknown issuer"),
            "sslmode={mode}: {e}"
        );
    }
}

/// What a worker waiting for its database logs says why: the certificate's
/// problem, not only that the handshake failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_cannot_verify_the_server_says_why() {
    let pg = server().await;
    let url = pg.url(
        "localhost",
        "postgres",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            pg.other_ca().display()
        ),
    );
    let settings = Settings::load_from(
        Role::Worker,
        None,
        [("DATABASE_URL".to_owned(), url)].into(),
    )
    .unwrap();
    let pool = db::pool(&settings.database).unwrap();
    let e = db::applied_version(&pool).await.unwrap_err();
    assert!(!e.is_configuration(), "{e}");
    assert!(
        e.to_string()
            .contains("TLS certificate verify failed: unknown issuer"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_and_prefer_encrypt_without_a_ca() {
    let pg = server().await;
    for params in ["sslmode=require", "sslmode=prefer", ""] {
        let client = db::connect(&pg.url("127.0.0.1", "postgres", params))
            .await
            .unwrap_or_else(|e| panic!("{params:?}: {e}"));
        assert!(encrypted(&client).await, "{params:?}");
    }
}

/// verify-ca checks the chain only: a host name the certificate does not
/// hold (the server reached through `hostaddr`) passes it, and fails
/// verify-full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_ca_ignores_the_name_verify_full_does_not() {
    let pg = server().await;
    let ca = pg.ca().display().to_string();
    let url = |mode: &str| {
        pg.url(
            "db.invalid",
            "postgres",
            &format!("hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={ca}"),
        )
    };
    let client = db::connect(&url("verify-ca")).await.unwrap();
    assert!(encrypted(&client).await);
    let e = db::connect(&url("verify-full")).await.err().unwrap();
    assert!(
        e.to_string().contains("TLS certificate verify failed")
            && e.to_string().contains("db.invalid"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_exits_non_zero_at_once_on_a_certificate_it_cannot_verify() {
    let pg = server().await;
    let url = pg.url(
        "localhost",
        "objectsync",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            pg.other_ca().display()
        ),
    );
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_objectsync-ingest"))
        .arg("migrate")
        .env("DATABASE_URL", url)
        .env_remove("DATABASE_URL_FILE")
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("migrate kept trying a certificate it cannot verify")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("TLS certificate verify failed: unknown issuer"),
        "{stderr}"
    );
}
