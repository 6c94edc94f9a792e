//! The plans of the paged reads do not depend on statistics: on tables
//! filled after their last ANALYZE (here: never analyzed, as after a bulk
//! load with autovacuum off), ingest's sessions still walk the primary key
//! for the page's ids and fetch only that page's rows.

use objectsync_infra::db;
use objectsync_ingest::startup::PLANNER_OPTIONS;
use objectsync_model::{OrgId, TypeId};
use objectsync_store::processes::{self, Order};
use objectsync_store::{Scope, lanes, records};
use objectsync_testkit::spawn_app_with;
use tokio_postgres::types::ToSql;

/// Rows inserted for the organization read, and as many for another one:
/// enough that a sequential scan and sort of them all would be the planner's
/// pick if it trusted its default guesses (it picks them at 1,000,000 rows).
const ROWS: i64 = 20_000;

/// `EXPLAIN` of `sql` with these parameters on an ingest session, as text.
async fn plan(
    client: &deadpool_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> String {
    client
        .query(&format!("explain (costs off) {sql}"), params)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_index_walk(plan: &str, index: &str) {
    for scan in ["Seq Scan", "Bitmap"] {
        assert!(!plan.contains(scan), "{scan} in:\n{plan}");
    }
    assert!(
        plan.contains(&format!("Index Only Scan using {index}"))
            || plan.contains(&format!("Index Only Scan Backward using {index}")),
        "no index-only walk of {index} for the page's ids:\n{plan}"
    );
    assert!(
        plan.contains(&format!("Index Scan using {index}"))
            && plan
                .lines()
                .any(|l| l.contains("Index Cond") && l.contains("id = p.id")),
        "the page's rows not fetched by their ids through {index}:\n{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_reads_walk_the_primary_key_without_statistics() {
    if objectsync_testkit::citus::not_on_citus(
        "each worker plans its shard's statement with its own settings and statistics",
    ) {
        return;
    }
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let other = app.org_with_vehicles().await;
    let setup = app.pool.get().await.unwrap();
    let type_id: i32 = setup
        .query_one(
            "select id from object_types where org_id = $1 and name = 'vehicle'",
            &[&org.id],
        )
        .await
        .unwrap()
        .get(0);
    for o in [org.id, other.id] {
        setup
            .execute(
                "insert into records (org_id, type_id, ext_id, attributes)
                 select $1, t.id, 'v' || g, jsonb_build_object('name', repeat('x', 200))
                   from generate_series(1, $2::int8) g,
                        (select id from object_types where org_id = $1 and name = 'vehicle') t",
                &[&o, &ROWS],
            )
            .await
            .unwrap();
        setup
            .execute(
                "insert into processes (org_id, name, object_type, records_total)
                 select $1, 'OBJECT_RECORDS_UPSERT', 'vehicle', 1 from generate_series(1, $2::int8)",
                &[&o, &ROWS],
            )
            .await
            .unwrap();
    }

    let ingest = db::pool_with_options(&app.settings.database, Some(PLANNER_OPTIONS)).unwrap();
    let client = ingest.get().await.unwrap();
    for order in [Order::Asc, Order::Desc] {
        for (limit, offset) in [(1_i64, 0_i64), (1000, 0), (1000, ROWS - 1000)] {
            let sql = records::page_sql(order);
            let p = plan(&client, &sql, &[&org.id, &type_id, &limit, &offset]).await;
            assert_index_walk(&p, "records_pkey");
            let rows = client
                .query(&sql, &[&org.id, &type_id, &limit, &offset])
                .await
                .unwrap();
            assert_eq!(rows.len() as i64, limit, "records, {limit} at {offset}");

            let limit = limit.min(50);
            let sql = processes::page_sql(order);
            let p = plan(&client, &sql, &[&org.id, &limit, &offset]).await;
            assert_index_walk(&p, "processes_pkey");
            let rows = client
                .query(&sql, &[&org.id, &limit, &offset])
                .await
                .unwrap();
            assert_eq!(rows.len() as i64, limit, "processes, {limit} at {offset}");
        }
    }
    // Pages after a cursor start the walk at the cursor's key, wherever it is.
    let ids: Vec<i64> = objectsync_testkit::column(
        &setup,
        "select id from records where org_id = $1 order by id",
        &[&org.id],
    )
    .await;
    for order in [Order::Asc, Order::Desc] {
        let sql = records::page_after_sql(order);
        let (first, deep) = match order {
            Order::Asc => (i64::MIN, ids[ids.len() - 1001]),
            Order::Desc => (i64::MAX, ids[1000]),
        };
        for after in [first, deep] {
            let limit = 1000_i64;
            let p = plan(&client, &sql, &[&org.id, &type_id, &after, &limit]).await;
            assert_index_walk(&p, "records_pkey");
            assert!(
                p.lines()
                    .any(|l| l.contains("Index Cond") && (l.contains("id >") || l.contains("id <"))),
                "the walk does not start at the cursor's key:\n{p}"
            );
            let rows = client
                .query(&sql, &[&org.id, &type_id, &after, &limit])
                .await
                .unwrap();
            assert_eq!(rows.len() as i64, limit, "records after {after}");
        }
    }
    // The counts come from the counters, exact without a scan.
    let scope = Scope::of(OrgId(org.id), TypeId(type_id));
    assert_eq!(records::count(&client, scope).await.unwrap(), ROWS);
    assert_eq!(
        processes::count(&client, OrgId(org.id)).await.unwrap(),
        ROWS
    );
}

/// Routing a batch reads the organization's newest open processes: a walk of
/// the partial index of open processes, not of the organization's whole
/// history, even when that history is long and never analyzed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_reads_only_the_open_processes_without_statistics() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let setup = app.pool.get().await.unwrap();
    setup
        .execute(
            "insert into processes (org_id, name, object_type, records_total, status)
             select $1, 'OBJECT_RECORDS_UPSERT', 'vehicle', 1,
                    case when g > $2::int8 - 5 then 'queued' else 'completed' end::process_status
               from generate_series(1, $2::int8) g",
            &[&org.id, &ROWS],
        )
        .await
        .unwrap();
    let ingest = db::pool_with_options(&app.settings.database, Some(PLANNER_OPTIONS)).unwrap();
    let client = ingest.get().await.unwrap();
    let n = 8_i64;
    let p = plan(&client, lanes::OPEN_QUEUES_SQL, &[&org.id, &n]).await;
    assert!(
        p.contains("Index Scan Backward using processes_open_by_org_idx"),
        "not a walk of the open processes:\n{p}"
    );
    let open = lanes::open_queues(&client, OrgId(org.id), n).await.unwrap();
    assert_eq!(open.len(), 5);
}
