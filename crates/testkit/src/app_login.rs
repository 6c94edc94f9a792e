//! A login of the app role (`objectsync_app`, migration V39) of a test's
//! own, for running ingest and workers with rows only, as production does.

use objectsync_infra::{Role, Settings, db};

/// `url` (of the machine's PostgreSQL, without TLS parameters) with another
/// user and database.
fn url_as(url: &str, user: &str, database: &str) -> String {
    let config: tokio_postgres::Config = url.parse().expect("a database URL");
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("the tests need PostgreSQL over TCP, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    // The URL's parameters stay (a scratch Citus cluster's sslmode).
    let query = url
        .split_once('?')
        .map_or(String::new(), |(_, q)| format!("?{q}"));
    format!("postgres://{user}@{host}:{port}/{database}{query}")
}

fn database_of(url: &str) -> String {
    let config: tokio_postgres::Config = url.parse().expect("a database URL");
    config.get_dbname().expect("a database name").to_owned()
}

/// A login role of the test's own, a member of the app role, as an
/// operator would make one; dropped on drop (the machine's PostgreSQL
/// trusts loopback connections, so it needs no password here).
pub struct AppLogin {
    /// The login's name.
    pub name: String,
    admin_url: String,
}

impl AppLogin {
    pub async fn create() -> Self {
        let settings = Settings::load_from(Role::Ingest, None, std::env::vars().collect())
            .expect("default settings");
        // The server the sandboxes are on: the Citus coordinator, if the
        // tests run on one.
        let server = match crate::citus::testing_on_citus() {
            true => std::env::var(crate::citus::CITUS_ENV).unwrap_or_default(),
            false => settings.database.url.expose_secret().to_owned(),
        };
        let admin_url = url_as(&server, "postgres", "postgres");
        let name = format!("objectsync_app_test_{}", uuid::Uuid::new_v4().simple());
        let admin = db::connect(&admin_url).await.expect("PostgreSQL");
        // The app role exists once any database of the cluster is migrated;
        // made here as V39 makes it, in case none is yet.
        admin
            .batch_execute(&format!(
                "do $$ begin create role {role} nologin; \
                 exception when duplicate_object or unique_violation then null; end $$;
                 create role {name} login in role {role};",
                role = db::APP_ROLE
            ))
            .await
            .expect("create the test's login role");
        Self { name, admin_url }
    }

    /// `url` as this login.
    pub fn url(&self, url: &str) -> String {
        url_as(url, &self.name, &database_of(url))
    }
}

impl Drop for AppLogin {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(admin) = db::connect(&url).await {
                    let _ = admin
                        .batch_execute(&format!("drop role if exists {name}"))
                        .await;
                }
            });
        })
        .join();
    }
}
