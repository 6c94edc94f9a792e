//! A database and a set of queue names of one's own, removed on drop.

use deadpool_postgres::Pool;
use objectsync_infra::settings::DatabaseSettings;
use objectsync_infra::{Role, Settings, Topology, db};

/// Settings pointing at a fresh uuid-named database (migrated) and a unique
/// queue prefix on the configured vhost. Dropping it drops the database and
/// deletes the queues, even after a panic.
pub struct Sandbox {
    pub settings: Settings,
    /// A pool on the sandbox database.
    pub pool: Pool,
    db_name: String,
    /// The coordinator's `postgres` database when the sandbox is on Citus
    /// (see [`crate::citus::CITUS_ENV`]).
    citus: Option<String>,
}

/// `url` with its database name replaced.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |s| s + 2) => &base[..i],
        _ => base,
    };
    format!("{prefix}/{name}{query}")
}

impl Sandbox {
    /// Creates the database `objectsync_{kind}_{uuid}` and the prefix
    /// `{kind}-{uuid}`, starting from the defaults and the environment.
    /// With `OBJECTSYNC_TEST_CITUS` set, the database is made on that Citus
    /// cluster (every node) and `migrate` distributes it.
    pub async fn create(kind: &str) -> Self {
        Self::make(kind, None, None, None, None).await
    }

    /// Like [`Sandbox::create`], on the PostgreSQL server `server` (a URL
    /// whose database name is replaced) instead of the configured one.
    pub async fn create_on(kind: &str, server: Option<&str>) -> Self {
        Self::make(kind, server, None, None, None).await
    }

    /// Like [`Sandbox::create`], on the broker nodes `urls` if given
    /// (queues are declared, and removed on drop, there only).
    pub async fn create_on_brokers(kind: &str, urls: Option<&[String]>) -> Self {
        Self::make(kind, None, urls, None, None).await
    }

    /// Like [`Sandbox::create`], with the database left empty: no
    /// migration applied (for an earlier release to migrate its way).
    pub async fn create_unmigrated(kind: &str) -> Self {
        Self::make(kind, None, None, Some(0), None).await
    }

    /// Like [`Sandbox::create`], with the database migrated only up to
    /// migration `version` when given: an install of an earlier version,
    /// to upgrade; `Some(0)` leaves it empty (to restore a dump into).
    pub async fn create_at(kind: &str, version: Option<i32>) -> Self {
        Self::make(kind, None, None, version, None).await
    }

    /// Like [`Sandbox::create`], on the Citus cluster whose coordinator's
    /// `postgres` database `admin_url` names, whatever the environment says.
    pub async fn create_on_citus(kind: &str, admin_url: &str) -> Self {
        Self::make(kind, None, None, None, Some(admin_url)).await
    }

    async fn make(
        kind: &str,
        server: Option<&str>,
        urls: Option<&[String]>,
        version: Option<i32>,
        citus: Option<&str>,
    ) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut settings = Settings::load_from(Role::Ingest, None, std::env::vars().collect())
            .expect("default settings load");
        if let Some(urls) = urls {
            settings.amqp.urls = urls.iter().map(|u| u.as_str().into()).collect();
        }
        if let Some(server) = server {
            settings.database.url = server.into();
        }
        let db_name = format!("objectsync_{kind}_{id}");
        // A sandbox on a server of the test's own stays there.
        let citus = match citus {
            Some(url) => Some(url.to_owned()),
            None => std::env::var(crate::citus::CITUS_ENV)
                .ok()
                .filter(|v| !v.is_empty() && server.is_none()),
        };
        // On Citus a migrated sandbox is a copy of a migrated template; one
        // left at an earlier version is made and migrated under the lock.
        let setup = match (&citus, version) {
            (Some(_), Some(_)) => Some(crate::citus::SETUP.lock().await),
            _ => None,
        };
        match &citus {
            Some(admin_url) => {
                settings.database.url = admin_url.clone().into();
                let made = match version {
                    None => crate::citus::create_migrated_database(admin_url, &db_name).await,
                    Some(_) => crate::citus::create_database(admin_url, &db_name).await,
                };
                made.expect("create the sandbox database on the Citus cluster");
            }
            None => {
                let admin = db::connect(&with_database(
                    settings.database.url.expose_secret(),
                    "postgres",
                ))
                .await
                .expect("PostgreSQL is reachable");
                admin
                    .execute(&format!("create database {db_name}"), &[])
                    .await
                    .expect("create the sandbox database");
            }
        }
        settings.database.url =
            with_database(settings.database.url.expose_secret(), &db_name).into();
        settings.amqp.prefix = format!("{kind}-{id}");
        if version != Some(0) {
            db::migrate_until(settings.database.url.expose_secret(), version)
                .await
                .expect("migrate the sandbox database");
        }
        drop(setup);
        // The test's (or bench's) own sessions: named apart from those of
        // the ingest and workers it starts, which keep their binaries' names.
        let pool = db::pool(&DatabaseSettings {
            application_name: "objectsync-testkit".into(),
            ..settings.database.clone()
        })
        .expect("sandbox pool");
        Self {
            settings,
            pool,
            db_name,
            citus,
        }
    }
}

impl Sandbox {
    /// The name of the sandbox's database.
    pub fn database(&self) -> &str {
        &self.db_name
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let db_url = self.settings.database.url.clone();
        let db_name = self.db_name.clone();
        let amqp = self.settings.amqp.clone();
        let citus = self.citus.clone();
        // Clean up on a thread of its own: Drop cannot await, and the
        // caller's runtime may be shutting down.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Some(admin_url) = citus {
                    crate::citus::drop_database(&admin_url, &db_name).await;
                } else if let Ok(admin) =
                    db::connect(&with_database(db_url.expose_secret(), "postgres")).await
                {
                    let _ = admin
                        .execute(
                            &format!("drop database if exists {db_name} with (force)"),
                            &[],
                        )
                        .await;
                }
                if let Ok(conn) = objectsync_infra::amqp::connect(&amqp, "test-cleanup").await
                    && let Ok(channel) = conn.create_channel().await
                {
                    let _ = Topology::new(&amqp).delete(&channel).await;
                    // An `EventTap`'s queue, if a test bound one.
                    let tap = format!("{}.events.tap", amqp.prefix);
                    let _ = channel
                        .queue_delete(tap.as_str().into(), Default::default())
                        .await;
                    let _ = conn.close(200, "OK".into()).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/objectsync", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
