//! `processes` and `process_errors` are partitioned by ranges of process id
//! (migrations V41–V44): after `migrate` on a fresh database, and on an
//! install of the version before, whose rows become the first partition.
//! A lookup by processId reads one partition.

use objectsync_infra::db;
use objectsync_ingest::startup::PLANNER_OPTIONS;
use objectsync_model::{OrgId, ProcessId};
use objectsync_store::processes;
use objectsync_testkit::{Sandbox, spawn_app_with};

/// The partitions of `table`, with their bounds, lowest first.
async fn partitions(client: &deadpool_postgres::Client, table: &str) -> Vec<String> {
    objectsync_testkit::column(
        client,
        "select c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid)
               from pg_inherits i join pg_class c on c.oid = i.inhrelid
              where i.inhparent = $1::text::regclass
              order by c.relname",
        &[&table],
    )
    .await
}

async fn relkind(client: &deadpool_postgres::Client, table: &str) -> String {
    let kind: i8 = client
        .query_one(
            "select relkind::\"char\" from pg_class where oid = $1::text::regclass",
            &[&table],
        )
        .await
        .unwrap()
        .get(0);
    (kind as u8 as char).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_database_has_partitioned_process_tables_and_lookups_read_one_partition() {
    if objectsync_testkit::citus::not_on_citus(
        "each worker plans its shard's statement, so the coordinator's plan shows no partitions",
    ) {
        return;
    }
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let client = app.pool.get().await.unwrap();
    for table in ["processes", "process_errors"] {
        assert_eq!(relkind(&client, table).await, "p", "{table} is partitioned");
    }
    let expected = [
        " FOR VALUES FROM (MINVALUE) TO ('1')",
        " FOR VALUES FROM ('1') TO ('1000001')",
        " FOR VALUES FROM ('1000001') TO ('2000001')",
    ];
    for (table, prefix) in [
        ("processes", "processes"),
        ("process_errors", "process_errors"),
    ] {
        let names: Vec<String> = ["p0", "p1", "p1000001"]
            .iter()
            .zip(expected)
            .map(|(suffix, bounds)| format!("{prefix}_{suffix}{bounds}"))
            .collect();
        assert_eq!(partitions(&client, table).await, names, "{table}");
    }
    // Ids start at 1, as before partitioning.
    let first = app
        .upsert_accepted(
            &org,
            "vehicle",
            serde_json::json!([{"identifiers": {"ext_id": "v1"}}]),
        )
        .await;
    assert_eq!(first, 1);

    let ingest = db::pool_with_options(&app.settings.database, Some(PLANNER_OPTIONS)).unwrap();
    let client = ingest.get().await.unwrap();
    let get = "select id from processes where org_id = $1 and id = $2";
    let errors = "select code from process_errors where org_id = $1 and process_id = $2
                  order by position limit 50";
    for (sql, partition) in [(get, "processes_p1"), (errors, "process_errors_p1")] {
        // As prepared and run with its parameters (a custom plan): the
        // planner keeps one partition.
        let plan: Vec<String> = objectsync_testkit::column(
            &client,
            &format!("explain (costs off) {sql}"),
            &[&org.id, &first],
        )
        .await;
        let plan = plan.join("\n");
        assert!(plan.contains(&format!(" on {partition} ")), "{plan}");
        assert!(
            plan.contains("Index Cond: ") && !plan.contains("Seq Scan"),
            "{plan}"
        );
        assert_eq!(
            plan.matches(" on process").count(),
            1,
            "one partition:\n{plan}"
        );
    }
    // A generic plan prunes when it starts, by the parameter's value.
    client
        .batch_execute(&format!(
            "set plan_cache_mode = force_generic_plan;
             prepare lookup(int8, int8) as {get};"
        ))
        .await
        .unwrap();
    let plan: Vec<String> = objectsync_testkit::column(
        &client,
        &format!("explain (costs off) execute lookup({}, {first})", org.id),
        &[],
    )
    .await;
    let plan = plan.join("\n");
    assert!(plan.contains("Subplans Removed: 2"), "{plan}");
    client
        .batch_execute("deallocate lookup; reset plan_cache_mode")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_of_the_version_before_keeps_its_rows_in_the_first_partition() {
    if objectsync_testkit::citus::not_on_citus(
        "a schema placed on Citus before V41 is not partitioned by migrate",
    ) {
        return;
    }
    let sandbox = Sandbox::create_at("test", Some(40)).await;
    let client = sandbox.pool.get().await.unwrap();
    client
        .batch_execute(
            "insert into organizations (name) values ('a');
             insert into processes (org_id, name, object_type, records_total, status, completed_at)
             select 1, 'OBJECT_RECORDS_UPSERT', 'vehicle', 1,
                    case when g <= 2 then 'queued' else 'completed' end::process_status,
                    case when g > 2 then now() end
               from generate_series(1, 1000) g;
             insert into process_errors
             select 1, 7, 0, 0, '{\"ext_id\": \"x\"}', 'invalid_value', 'rejected';
             insert into idempotency_keys (org_id, key, request_hash, process_id)
             values (1, 'k', '\\x00', 9);",
        )
        .await
        .unwrap();
    drop(client);
    db::migrate(sandbox.settings.database.url.expose_secret())
        .await
        .unwrap();

    let client = sandbox.pool.get().await.unwrap();
    assert_eq!(relkind(&client, "processes").await, "p");
    // Below the bound: the old table, attached whole; above, the new
    // partitions, a million ids each.
    assert_eq!(
        partitions(&client, "processes").await,
        [
            "processes_p0 FOR VALUES FROM (MINVALUE) TO ('1001001')",
            "processes_p1001001 FOR VALUES FROM ('1001001') TO ('2001001')",
            "processes_p2001001 FOR VALUES FROM ('2001001') TO ('3001001')",
        ]
    );
    let r = client
        .query_one(
            "select (select count(*) from processes_p0),
                    (select count(*) from processes),
                    (select sum(n)::int8 from process_counts),
                    (select processes_stored from dashboard.org_usage),
                    (select processes_open from dashboard.org_usage),
                    (select count(*) from process_errors),
                    (select process_id from idempotency_keys)",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<i64> = (0..7).map(|i| r.get(i)).collect();
    assert_eq!(got, [1000, 1000, 1000, 1000, 2, 1, 9]);
    // What ingest reads of an old process, it reads as before.
    let old = processes::get(&client, OrgId(1), ProcessId(7))
        .await
        .unwrap()
        .expect("process 7");
    assert_eq!(old.total, 1);
    let (n, rejections) = processes::rejections(&client, OrgId(1), ProcessId(7), 50, 0)
        .await
        .unwrap();
    assert_eq!((n, rejections[0].code.as_str()), (1, "invalid_value"));
    // New processes take ids from the bound on, counted like the old.
    let id: i64 = client
        .query_one(
            "insert into processes (org_id, name, object_type, records_total)
             values (1, 'OBJECT_RECORDS_DELETE', 'vehicle', 1) returning id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(id, 1_001_001);
    let counted: i64 = client
        .query_one("select sum(n)::int8 from process_counts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(counted, 1001);
}
