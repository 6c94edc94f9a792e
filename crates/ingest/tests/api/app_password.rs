//! `objectsync-ingest migrate` gives the app role (`objectsync_app`) a
//! password it logs in with: on a scratch server of the test's own, since
//! the machine's PostgreSQL trusts loopback logins and would take any.

use std::time::Duration;

use objectsync_infra::{Role, Settings, db};
use objectsync_testkit::tls_postgres::TlsPostgres;
use tokio_postgres::error::SqlState;

use crate::app_role::refused;

/// The password reaches the server as a SCRAM verifier, the right one logs
/// the role in, a wrong one does not, and the role has rows only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_gives_the_app_role_a_password_it_logs_in_with() {
    let pg = tokio::task::spawn_blocking(TlsPostgres::start)
        .await
        .unwrap();
    let tls = format!("sslmode=verify-full&sslrootcert={}", pg.ca().display());
    let owner_url = pg.url("localhost", "objectsync", &tls);
    let settings = Settings::load_from(
        Role::Ingest,
        None,
        [
            ("DATABASE_URL".to_owned(), owner_url.clone()),
            (
                "OBJECTSYNC__DATABASE__APP_PASSWORD".to_owned(),
                "it's a 'secret'".to_owned(),
            ),
        ]
        .into(),
    )
    .unwrap();
    let applied = db::setup(&settings.database)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", pg.log()));
    assert!(applied > 0);

    let owner = db::connect(&owner_url).await.unwrap();
    let stored: String = owner
        .query_one(
            "select rolpassword from pg_authid where rolname = $1 and rolcanlogin",
            &[&db::APP_ROLE],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    assert!(
        !pg.log().contains("secret'"),
        "the password reached the log"
    );

    // Passwords from now on, for every login but the owner's.
    let hba: String = owner.query_one("show hba_file", &[]).await.unwrap().get(0);
    std::fs::write(
        &hba,
        "local all all trust\nhostssl all postgres 127.0.0.1/32 trust\n\
         hostssl all all 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    owner
        .batch_execute("select pg_reload_conf()")
        .await
        .unwrap();
    let app_url = |password: &str| {
        format!(
            "postgres://{}:{password}@localhost:{}/objectsync?{tls}",
            db::APP_ROLE,
            pg.port()
        )
    };
    // The reload takes effect a moment later.
    let mut wrong = db::connect(&app_url("wrong")).await;
    for _ in 0..50 {
        if wrong.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        wrong = db::connect(&app_url("wrong")).await;
    }
    let Err(e) = wrong else {
        panic!("a wrong password logged in");
    };
    assert!(e.to_string().contains("password"), "{e}");

    let app = db::connect(&app_url("it%27s%20a%20%27secret%27"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", pg.log()));
    let user: String = app
        .query_one("select current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, db::APP_ROLE);
    app.batch_execute("select count(*) from processes")
        .await
        .unwrap();
    assert_eq!(
        refused(&app, "create table intruder (x int)").await,
        SqlState::INSUFFICIENT_PRIVILEGE
    );
    // And it is current for the app role: nothing to apply, nothing tried.
    assert_eq!(
        db::migrate_if_behind(&app_url("it%27s%20a%20%27secret%27"))
            .await
            .unwrap(),
        0
    );
}
