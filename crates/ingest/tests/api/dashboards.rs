//! The `dashboard` schema (migration V13) and the Grafana dashboards built
//! on it: every SQL query of `deploy/grafana/dashboards/*.json` runs against
//! a seeded database as the role Grafana logs in through, so that renaming a
//! column cannot break a panel silently; and the role `objectsync_dashboard`
//! reads the views and no table.

use std::collections::HashMap;

use objectsync_testkit::{Org, TestApp, spawn_app};
use serde_json::{Value, json};
use tokio_postgres::error::SqlState;

const DASHBOARDS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/grafana/dashboards"
);

/// The uid the dashboards give the PostgreSQL data source.
const POSTGRES_UID: &str = "objectsync-postgres";

const VIEWS: [&str; 6] = [
    "organizations",
    "backlog",
    "throughput_per_minute",
    "failures_by_code",
    "latency",
    "org_usage",
];

/// Two organizations with ended processes of every kind and open ones, so
/// that every view has rows:
/// - `a`: a batch with a rejected value, a batch with an unknown id, one
///   process queued and one in process (workers stopped);
/// - `b`: a batch with a rejected value, and two processes failed as a whole.
async fn seeded() -> (TestApp, Org, Org) {
    let mut app = spawn_app().await;
    let a = app.org_with_vehicles().await;
    let b = app.org_with_vehicles().await;
    let p = app
        .upsert_and_wait(
            &a,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "a1"}, "attributes": {"price": 10}},
                {"identifiers": {"ext_id": "a2"}},
                {"identifiers": {"ext_id": "a3"}, "attributes": {"price": "not a number"}}
            ]),
        )
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    let p = app
        .upsert_and_wait(
            &a,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "a1"}, "attributes": {"price": 11}},
                {"identifiers": {"id": 999_999_999}}
            ]),
        )
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    let p = app
        .upsert_and_wait(
            &b,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "b1"}},
                {"identifiers": {"ext_id": "b2"}, "attributes": {"price": "not a number"}}
            ]),
        )
        .await;
    assert_eq!(p["status"], "completed", "{p}");

    app.stop_workers().await;
    let open = json!([{"identifiers": {"ext_id": "a4"}}, {"identifiers": {"ext_id": "a5"}}]);
    app.upsert_accepted(&a, "vehicle", open.clone()).await;
    let picked = app.upsert_accepted(&a, "vehicle", open).await;

    // A whole-process failure takes a broken database or broker (or a day)
    // to happen through the API; write the rows as the worker's mark_failed
    // and the stale-process monitor leave them, and mark the other open
    // process picked up as mark_started would.
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "insert into processes (org_id, name, status, object_type, records_total, deliveries,
                                    error, created_at, started_at, completed_at)
             values ($1, 'OBJECT_RECORDS_UPSERT', 'failed', 'vehicle', 4, 5,
                     'gave up after 5 deliveries: database: connection refused (08006)',
                     now() - interval '3 minutes', now() - interval '179 seconds',
                     now() - interval '1 minute'),
                    ($1, 'OBJECT_RECORDS_UPSERT', 'failed', 'vehicle', 4, 1,
                     'no worker applied the batch within 24 h after its last delivery; its \
                      message was lost or never consumed, so send the batch again',
                     now() - interval '25 hours', now() - interval '25 hours',
                     now() - interval '2 minutes')",
            &[&b.id],
        )
        .await
        .unwrap();
    client
        .execute(
            "update processes set status = 'in_process', started_at = now(), deliveries = 1
              where org_id = $1 and id = $2",
            &[&a.id, &picked],
        )
        .await
        .unwrap();
    (app, a, b)
}

/// One SQL query of a dashboard, as Grafana holds it.
struct Query {
    /// File and JSON pointer, for messages.
    at: String,
    sql: String,
    /// Grafana's `format`: a `time_series` query must return `time`.
    time_series: bool,
}

/// Every SQL query of every dashboard (panel targets and the variables on
/// the PostgreSQL data source), and the custom All value of each variable.
fn dashboard_queries() -> (Vec<Query>, HashMap<String, String>) {
    let mut queries = Vec::new();
    let mut all_values = HashMap::new();
    let mut files: Vec<_> = std::fs::read_dir(DASHBOARDS)
        .expect("deploy/grafana/dashboards")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards in {DASHBOARDS}");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        collect_raw_sql(&dashboard, &name, &mut queries);
        let variables = dashboard["templating"]["list"].as_array().cloned();
        for (i, var) in variables.unwrap_or_default().iter().enumerate() {
            if var["datasource"]["uid"] != POSTGRES_UID {
                continue;
            }
            let var_name = var["name"].as_str().expect("variable name").to_owned();
            if let Some(sql) = var["query"].as_str() {
                queries.push(Query {
                    at: format!("{name}/templating/list/{i}"),
                    sql: sql.to_owned(),
                    time_series: false,
                });
            }
            let all = var["allValue"].as_str();
            assert!(
                all.is_some_and(|v| !v.is_empty()),
                "{name}: variable {var_name} needs a custom All value (a subquery), \
                 or this test needs to know what All stands for"
            );
            all_values.insert(var_name, all.unwrap().to_owned());
        }
    }
    (queries, all_values)
}

fn collect_raw_sql(value: &Value, at: &str, out: &mut Vec<Query>) {
    match value {
        Value::Object(map) => {
            if let Some(sql) = map.get("rawSql").and_then(Value::as_str) {
                out.push(Query {
                    at: at.to_owned(),
                    sql: sql.to_owned(),
                    time_series: map.get("format").and_then(Value::as_str) == Some("time_series"),
                });
            }
            for (key, v) in map {
                collect_raw_sql(v, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_raw_sql(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Replaces `name(args)` with `expand(args)`, parentheses balanced.
fn expand_macro(sql: &str, name: &str, expand: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(start) = rest.find(name) {
        let after = &rest[start + name.len()..];
        assert!(after.starts_with('('), "{name} without arguments in {sql}");
        let mut depth = 0;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("unbalanced {name}( in {sql}"));
        out.push_str(&rest[..start]);
        out.push_str(&expand(after[1..end].trim()));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// What Grafana sends for a 24-hour time range with the variables set to
/// `values` (already formatted as Grafana would).
fn to_sql(sql: &str, values: &HashMap<String, String>) -> String {
    let mut sql = expand_macro(sql, "$__timeFilter", |column| {
        format!("{column} between now() - interval '24 hours' and now()")
    });
    sql = expand_macro(&sql, "$__timeFrom", |_| {
        "(now() - interval '24 hours')".into()
    });
    sql = expand_macro(&sql, "$__timeTo", |_| "now()".into());
    sql = sql
        .replace("$__interval_ms", "60000")
        .replace("$__interval", "1m");
    for (name, value) in values {
        sql = sql
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("[[{name}]]"), value);
        let bare = format!("${name}");
        let mut replaced = String::new();
        let mut rest = sql.as_str();
        while let Some(i) = rest.find(&bare) {
            let next = rest[i + bare.len()..].chars().next();
            let whole = !next.is_some_and(|c| c.is_alphanumeric() || c == '_');
            replaced.push_str(&rest[..i]);
            replaced.push_str(if whole { value } else { &bare });
            rest = &rest[i + bare.len()..];
        }
        replaced.push_str(rest);
        sql = replaced;
    }
    assert!(
        !sql.contains('$'),
        "a Grafana macro or variable this test does not know; teach to_sql about it:\n{sql}"
    );
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_runs_on_the_views_and_returns_rows() {
    let (app, a, _) = seeded().await;
    let (queries, all_values) = dashboard_queries();
    assert!(
        queries.len() >= 10,
        "expected the panels and variables, found {}",
        queries.len()
    );
    // Grafana quotes each value of a multi-value variable.
    let one_org: HashMap<String, String> = all_values
        .keys()
        .map(|name| (name.clone(), format!("'{}'", a.id)))
        .collect();
    let mut client = app.pool.get().await.unwrap();
    for query in &queries {
        for (selection, values) in [("All", &all_values), ("one organization", &one_org)] {
            let sql = to_sql(&query.sql, values);
            // As Grafana's login would: a panel reading a table fails here.
            let tx = client.transaction().await.unwrap();
            tx.batch_execute("set local role objectsync_dashboard")
                .await
                .unwrap();
            let rows = tx.query(&sql, &[]).await.unwrap_or_else(|e| {
                let why = e.as_db_error().map_or_else(
                    || e.to_string(),
                    |db| format!("{} ({})", db.message(), db.code().code()),
                );
                panic!("{} ({selection}) fails: {why}\n{sql}", query.at)
            });
            assert!(
                !rows.is_empty(),
                "{} ({selection}) returns no row on the seeded database:\n{sql}",
                query.at
            );
            if query.time_series {
                assert!(
                    rows[0].columns().iter().any(|c| c.name() == "time"),
                    "{}: a time series query needs a column named time",
                    query.at
                );
            }
            tx.rollback().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_views_count_the_seeded_processes() {
    let (app, a, b) = seeded().await;
    let client = app.pool.get().await.unwrap();
    let orgs = [a.id, b.id];

    let row = client
        .query_one(
            "select count(*), sum(queued)::int8, sum(in_process)::int8, sum(records_pending)::int8,
                    bool_and(oldest_open_seconds >= 0)
               from dashboard.backlog where org_id = $1 and object_type = 'vehicle'",
            &[&a.id],
        )
        .await
        .unwrap();
    let backlog: (i64, i64, i64, i64, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(backlog, (1, 1, 1, 4, true));
    let others: i64 = client
        .query_one(
            "select count(*) from dashboard.backlog where org_id = $1",
            &[&b.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(others, 0);

    // (completed, failed, processed, created, updated, deleted, failed records)
    let throughput = |org: i64| {
        let client = &client;
        async move {
            let r = client
                .query_one(
                    "select sum(processes_completed)::int8, sum(processes_failed)::int8,
                            sum(records_processed)::int8, sum(records_created)::int8,
                            sum(records_updated)::int8, sum(records_deleted)::int8,
                            sum(records_failed)::int8
                       from dashboard.throughput_per_minute where org_id = $1",
                    &[&org],
                )
                .await
                .unwrap();
            let v: Vec<i64> = (0..7).map(|i| r.get(i)).collect();
            v
        }
    };
    assert_eq!(throughput(a.id).await, [2, 0, 5, 2, 1, 0, 2]);
    assert_eq!(throughput(b.id).await, [1, 2, 2, 1, 0, 0, 1]);

    let failures: Vec<(i64, String, String, i64, i64)> = client
        .query(
            "select org_id, level, code, failures, processes
               from dashboard.failures_by_code where org_id = any($1)
              order by org_id, level desc, code",
            &[&orgs.as_slice()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let row = |org: i64, level: &str, code: &str| (org, level.into(), code.into(), 1, 1);
    assert_eq!(
        failures,
        [
            row(a.id, "record", "invalid_attribute_value"),
            row(a.id, "record", "record_not_found"),
            row(b.id, "record", "invalid_attribute_value"),
            row(b.id, "process", "gave up after 5 deliveries"),
            row(
                b.id,
                "process",
                "no worker applied the batch within 24 h after its last delivery"
            ),
        ]
    );

    let row = client
        .query_one(
            "select sum(processes_completed)::int8,
                    bool_and(0 <= latency_p50_seconds and latency_p50_seconds <= latency_p90_seconds
                             and latency_p90_seconds <= latency_p99_seconds
                             and latency_p99_seconds <= latency_max_seconds),
                    bool_and(0 <= queue_lag_p50_seconds and queue_lag_p50_seconds <= queue_lag_p99_seconds
                             and queue_lag_p99_seconds <= queue_lag_max_seconds
                             and queue_lag_max_seconds <= latency_max_seconds)
               from dashboard.latency",
            &[],
        )
        .await
        .unwrap();
    let latency: (i64, bool, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(latency, (3, true, true), "failed processes are left out");

    // (stored, open, ended, failed, records processed, records failed)
    let usage: Vec<(i64, [i64; 6])> = client
        .query(
            "select org_id, records_stored, processes_open, processes_ended_24h,
                    processes_failed_24h, records_processed_24h, records_failed_24h
               from dashboard.org_usage where org_id = any($1) order by org_id",
            &[&orgs.as_slice()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), std::array::from_fn(|i| r.get(i + 1))))
        .collect();
    assert_eq!(
        usage,
        [(a.id, [2, 2, 2, 0, 5, 2]), (b.id, [1, 0, 3, 2, 2, 1])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_role_reads_the_views_and_no_table() {
    let (app, _, _) = seeded().await;
    let mut client = app.pool.get().await.unwrap();
    let mut tx = client.transaction().await.unwrap();
    tx.batch_execute("set local role objectsync_dashboard")
        .await
        .unwrap();
    for view in VIEWS {
        let rows = tx
            .query(&format!("select * from dashboard.{view}"), &[])
            .await
            .unwrap_or_else(|e| panic!("dashboard.{view}: {e:?}"));
        assert!(!rows.is_empty(), "dashboard.{view} is empty");
    }
    for denied in [
        "select * from records",
        "select * from processes",
        "select * from process_errors",
        "select * from organizations",
        "select * from api_keys",
        "update dashboard.organizations set org_name = 'x'",
        "create table dashboard.x (a int)",
        // PostgreSQL 15 took CREATE on schema public away from PUBLIC.
        "create table public.x (a int)",
    ] {
        let attempt = tx.savepoint("denied").await.unwrap();
        let error = attempt
            .batch_execute(denied)
            .await
            .expect_err(&format!("{denied} must be refused"));
        // On Citus the views read through functions (no view over a
        // function is updatable), so the update is refused before its
        // privileges are checked.
        let refused = error.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE)
            || (objectsync_testkit::citus::testing_on_citus()
                && denied.starts_with("update dashboard.")
                && error.code() == Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE));
        assert!(refused, "{denied}: {error:?}");
        attempt.rollback().await.unwrap();
    }
    tx.rollback().await.unwrap();
    // What the role can read, PUBLIC's privileges included: the views, and
    // outside the system catalogs and an extension's own views (Citus's
    // metadata: table names and sizes) nothing else.
    let readable: Vec<String> = objectsync_testkit::column(
        &client,
        "select n.nspname || '.' || c.relname
               from pg_class c
               join pg_namespace n on n.oid = c.relnamespace
              where c.relkind in ('r', 'p', 'v', 'm', 'f')
                and n.nspname not in ('pg_catalog', 'information_schema')
                and has_any_column_privilege('objectsync_dashboard', c.oid, 'select')
                and not exists (select from pg_depend d
                                 where d.classid = 'pg_class'::regclass and d.objid = c.oid
                                   and d.deptype = 'e')
              order by 1",
        &[],
    )
    .await;
    let mut views: Vec<String> = VIEWS.iter().map(|v| format!("dashboard.{v}")).collect();
    views.sort();
    assert_eq!(readable, views);
}

/// On Citus each view reads through a function that runs as its owner; a
/// migration that replaces a view makes it read its tables again, and the
/// next `migrate` puts the function back. On PostgreSQL the views read
/// their tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_citus_a_replaced_view_reads_through_its_function_again() {
    let (app, a, _) = seeded().await;
    let mut client = app.pool.get().await.unwrap();
    if !objectsync_testkit::citus::testing_on_citus() {
        assert_eq!(
            dashboard_functions(&client).await,
            0,
            "PostgreSQL's views read their tables"
        );
        return;
    }
    assert_eq!(dashboard_functions(&client).await, VIEWS.len() as i64);
    // What a later migration would do: the view reads its table again.
    client
        .batch_execute(
            "create or replace view dashboard.organizations as
             select id as org_id, name as org_name, custom_objects_enabled, created_at
               from organizations",
        )
        .await
        .unwrap();
    let wrapped = objectsync_infra::db::citus::wrap_dashboard_views(&mut client)
        .await
        .unwrap();
    assert_eq!(wrapped, ["organizations"]);
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("set local role objectsync_dashboard")
        .await
        .unwrap();
    let name: String = tx
        .query_one(
            "select org_name from dashboard.organizations where org_id = $1",
            &[&a.id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!name.is_empty());
}

/// The functions behind the views (Citus only).
async fn dashboard_functions(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "select count(*) from pg_proc where pronamespace::regnamespace::text = 'dashboard_rows'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}
