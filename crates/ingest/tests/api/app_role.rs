//! Least privilege: ingest and workers run as a login of the app role
//! (`objectsync_app`, migration V39), which reads and writes every row the
//! services need and cannot change the schema; a schema behind is left to
//! `objectsync-ingest migrate` run as the owner. (`app_password` has the
//! role's own login.)

use std::time::Duration;

use objectsync_infra::db;
use objectsync_testkit::{AppLogin, Sandbox, spawn_app_with};
use serde_json::json;
use tokio_postgres::error::SqlState;
use tokio_util::sync::CancellationToken;

/// The SQLSTATE of what `sql` fails with, run by `client`.
pub(crate) async fn refused(client: &tokio_postgres::Client, sql: &str) -> SqlState {
    let e = client
        .batch_execute(sql)
        .await
        .expect_err(&format!("the app role ran {sql}"));
    e.code().cloned().unwrap_or_else(|| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_a_worker_run_as_the_app_role_and_cannot_change_the_schema() {
    let login = AppLogin::create().await;
    let app = spawn_app_with(1, |s| {
        s.database.url = login.url(s.database.url.expose_secret()).into();
    })
    .await;
    let url = app.settings.database.url.expose_secret().to_owned();
    assert!(url.contains(&login.name), "{url}");

    // The admin API, a batch end to end, the reads and the console.
    let org = app.org_with_vehicles_and_garages().await;
    let records: Vec<_> = (0..50)
        .map(|i| {
            json!({"identifiers": {"ext_id": format!("car-{i}")},
                   "attributes": {"name": format!("Car {i}"), "price": i},
                   "associations": [{"object_type": "garage", "records": [
                       {"identifiers": {"ext_id": "g-1"}, "action": "link"}]}]})
        })
        .collect();
    let p = app
        .upsert_and_wait(
            &org,
            "garage",
            json!([{"identifiers": {"ext_id": "g-1"}, "attributes": {"name": "G"}}]),
        )
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    let p = app.upsert_and_wait(&org, "vehicle", json!(records)).await;
    assert_eq!(p["status"], "completed", "{p}");
    assert_eq!(p["info"]["records"]["created"], 50, "{p}");
    assert_eq!(app.records_by_ext_id(&org, "vehicle").await.len(), 50);
    let cookie = app.console_cookie().await;
    app.console_page(&cookie, "/console").await;
    app.console_page(&cookie, &format!("/console/organizations/{}", org.id))
        .await;

    // Every session of the services was the app role's login.
    let owner = app.pool.get().await.unwrap();
    let users: Vec<String> = objectsync_testkit::column(
        &owner,
        "select distinct usename::text from pg_stat_activity
              where datname = current_database() and pid <> pg_backend_pid()
                and backend_type = 'client backend'
                -- Citus's own sessions (2PC recovery, its daemons) on Citus.
                and application_name not like 'citus%'",
        &[],
    )
    .await;
    assert_eq!(users, vec![login.name.clone()]);

    // The rule of ARCHITECTURE.md: every table and sequence, rows only.
    let missing: Vec<String> = objectsync_testkit::column(
        &owner,
        "select c.relname::text from pg_class c
               join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = 'public' and c.relname <> 'refinery_schema_history'
                and ((c.relkind in ('r', 'p') and not (
                          has_table_privilege($1, c.oid, 'select')
                      and has_table_privilege($1, c.oid, 'insert')
                      and has_table_privilege($1, c.oid, 'update')
                      and has_table_privilege($1, c.oid, 'delete')))
                  or (c.relkind = 'S' and not has_sequence_privilege($1, c.oid, 'usage')))",
        &[&db::APP_ROLE],
    )
    .await;
    assert!(
        missing.is_empty(),
        "the app role lacks rights on {missing:?}"
    );

    // Functions that run with their owner's rights: the retention
    // sweeper's DDL on partitions (V47, V48), each with a search_path of its
    // own, which the app role may call and no one else (not `public`).
    let definers: Vec<(String, bool, bool, bool)> = owner
        .query(
            "select p.proname::text,
                    coalesce('search_path=public, pg_temp' = any(p.proconfig), false),
                    has_function_privilege($1, p.oid, 'execute'),
                    exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                             where a.grantee = 0 and a.privilege_type = 'EXECUTE')
               from pg_proc p join pg_namespace n on n.oid = p.pronamespace
              where n.nspname = 'public' and p.prosecdef
              order by 1",
            &[&db::APP_ROLE],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let expected: Vec<(String, bool, bool, bool)> = [
        "process_errors_attach_partition",
        "processes_add_partition",
        "processes_detach_partition",
        "processes_drop_partition",
    ]
    .iter()
    .map(|name| (name.to_string(), true, true, false))
    .collect();
    assert_eq!(definers, expected, "(name, search_path, app role, public)");

    let client = db::connect(&url).await.unwrap();
    for sql in [
        "create table intruder (x int)",
        "drop table records",
        "alter table processes add column x int",
        "alter table processes detach partition processes_p1",
        "drop table processes_p1",
        "truncate api_keys",
        "create index on records (updated_at)",
        "insert into refinery_schema_history (version) values (999)",
        "delete from refinery_schema_history",
    ] {
        assert_eq!(
            refused(&client, sql).await,
            SqlState::INSUFFICIENT_PRIVILEGE
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_migrations_pending_the_app_role_waits_for_the_owner() {
    let sandbox = Sandbox::create("approle").await;
    let login = AppLogin::create().await;
    let mut settings = sandbox.settings.clone();
    settings.database.url = login.url(settings.database.url.expose_secret()).into();
    settings.http.port = 0;
    let owner = sandbox.pool.get().await.unwrap();
    // As if this build brought a migration the database does not have yet.
    let newest = owner
        .query_one(
            "delete from refinery_schema_history
              where version = (select max(version) from refinery_schema_history)
          returning version, name, applied_on, checksum",
            &[],
        )
        .await
        .unwrap();

    let e = db::migrate_if_behind(settings.database.url.expose_secret())
        .await
        .unwrap_err();
    let said = e.to_string();
    assert!(matches!(e, db::DbError::NotSchemaOwner { .. }), "{said}");
    assert!(said.contains(&login.name), "{said}");
    assert!(said.contains("run `objectsync-ingest migrate`"), "{said}");

    // Ingest does not fail: it waits until the owner has migrated.
    let cancel = CancellationToken::new();
    let building = tokio::spawn({
        let (settings, cancel) = (settings.clone(), cancel.clone());
        async move { objectsync_ingest::Application::build(&settings, &cancel).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !building.is_finished(),
        "ingest did not wait for the schema"
    );
    let (version, name, applied_on, checksum): (i32, String, String, String) =
        (newest.get(0), newest.get(1), newest.get(2), newest.get(3));
    owner
        .execute(
            "insert into refinery_schema_history (version, name, applied_on, checksum)
             values ($1, $2, $3, $4)",
            &[&version, &name, &applied_on, &checksum],
        )
        .await
        .unwrap();
    let built = tokio::time::timeout(Duration::from_secs(10), building)
        .await
        .expect("ingest starts once the schema is current")
        .unwrap();
    assert!(built.is_ok(), "{:?}", built.err());
    cancel.cancel();
}
