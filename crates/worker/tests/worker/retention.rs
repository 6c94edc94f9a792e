//! Retention by partition: the sweeper drops the partitions of `processes`
//! (and their rejections) whose processes all ended before the retention
//! time, keeps any partition holding an open process however old, keeps
//! partitions ahead of the ids being drawn, and leaves the counts exact.

use std::time::{Duration, Instant};

use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::Value;

/// Processes of `org` made straight in the table: `n` of them, `status`,
/// accepted and (unless open) ended `ago`, with `rejections` rows each.
pub(crate) async fn add(
    app: &TestApp,
    org: &Org,
    n: i64,
    status: &str,
    ago: &str,
    rejections: i32,
) {
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "with made as (
                 insert into processes (org_id, name, object_type, records_total, status,
                                        created_at, completed_at)
                 select $1, 'OBJECT_RECORDS_UPSERT', 'vehicle', 1, $3::text::process_status,
                        now() - $4::text::interval,
                        case when $3 in ('completed', 'failed')
                             then now() - $4::text::interval end
                   from generate_series(1, $2::int8)
                 returning org_id, id)
             insert into process_errors
                    (org_id, process_id, position, record_index, identifiers, code, message)
             select org_id, id, k, k, '{}', 'invalid_value', 'rejected'
               from made, generate_series(0, $5 - 1) k",
            &[&org.id, &n, &status, &ago, &rejections],
        )
        .await
        .unwrap();
    if objectsync_testkit::citus::testing_on_citus() {
        // Citus runs no counting trigger: the store counts what it writes,
        // and so does a test that writes processes by hand.
        client
            .execute(
                "insert into process_counts as c (org_id, slot, n) values ($1, 0, $2)
                     on conflict (org_id, slot) do update set n = c.n + excluded.n",
                &[&org.id, &n],
            )
            .await
            .unwrap();
    }
}

/// Moves the process id sequence so that the next id is `next`.
pub(crate) async fn next_id_is(app: &TestApp, next: i64) {
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "select setval(pg_get_serial_sequence('processes', 'id'), $1, false)",
            &[&next],
        )
        .await
        .unwrap();
}

/// The tables of partitions of `processes`, attached or not (a partition
/// being dropped is detached first, then dropped with its counts
/// subtracted: a sweep is over when its table is gone).
pub(crate) async fn partitions(app: &TestApp) -> Vec<String> {
    let client = app.pool.get().await.unwrap();
    objectsync_testkit::column(
        &client,
        "select relname from pg_class
              where relkind = 'r' and relname ~ '^processes_p[0-9]+$'
                and relnamespace = 'public'::regnamespace
              order by relname",
        &[],
    )
    .await
}

/// Waits (20 s at most) until the partitions of `processes` satisfy `ok`.
pub(crate) async fn wait_for_partitions(app: &TestApp, what: &str, ok: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let names = partitions(app).await;
        if ok(&names) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each organization's processes as kept, as counted, and as the API and the
/// dashboard view say: all four must agree.
pub(crate) async fn assert_counts_exact(app: &TestApp, orgs: &[&Org]) {
    let client = app.pool.get().await.unwrap();
    for org in orgs {
        let row = client
            .query_one(
                "select (select count(*) from processes where org_id = $1),
                        (select coalesce(sum(n), 0)::int8 from process_counts where org_id = $1)",
                &[&org.id],
            )
            .await
            .unwrap();
        let (kept, counted): (i64, i64) = (row.get(0), row.get(1));
        // A statement of its own: on Citus the view reads through a
        // function, which a statement routed to a shard cannot call.
        let stored: i64 = client
            .query_one(
                "select processes_stored from dashboard.org_usage where org_id = $1",
                &[&org.id],
            )
            .await
            .unwrap()
            .get(0);
        let listed: Value = app
            .get(&org.key, "/v3/processes?limit=1")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(counted, kept, "process_counts of org {}", org.id);
        assert_eq!(stored, kept, "dashboard.org_usage of org {}", org.id);
        assert_eq!(listed["count"], kept, "GET /v3/processes of org {}", org.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_partitions_are_dropped_whole_and_open_processes_kept() {
    let mut app = spawn_app_with(0, |s| {
        s.retention.processes_secs = 3600;
        s.retention.sweep_secs = 1;
        s.retention.partition_min_processes = 1_000;
        s.retention.partition_secs = 60;
    })
    .await;
    let (a, b) = (app.org_with_vehicles().await, app.org_with_vehicles().await);
    // A fresh database: an empty first partition below id 1 (where an
    // upgraded install keeps its old table), then two of a million ids.
    assert_eq!(
        partitions(&app).await,
        ["processes_p0", "processes_p1", "processes_p1000001"]
    );
    // p1: ended two hours ago, past the retention of an hour.
    add(&app, &a, 20, "completed", "2 hours", 2).await;
    add(&app, &b, 10, "failed", "3 hours", 0).await;
    // p1000001: ended long ago too, but one process is still open.
    next_id_is(&app, 1_000_001).await;
    add(&app, &a, 5, "completed", "2 hours", 1).await;
    add(&app, &b, 1, "queued", "5 hours", 0).await;
    // p2000001: a full partition whose processes ended ten minutes ago.
    app.pool
        .get()
        .await
        .unwrap()
        .execute("select processes_add_partition(2000001, 2001001)", &[])
        .await
        .unwrap();
    next_id_is(&app, 2_000_001).await;
    add(&app, &a, 3, "completed", "10 minutes", 1).await;
    next_id_is(&app, 2_001_001).await;
    assert_counts_exact(&app, &[&a, &b]).await;

    app.start_worker().await;
    wait_for_partitions(&app, "p0 and p1 dropped", |names| {
        !names
            .iter()
            .any(|n| n == "processes_p0" || n == "processes_p1")
    })
    .await;
    // No id is without a partition: two of the minimum size are ahead.
    wait_for_partitions(&app, "partitions ahead", |names| {
        names.iter().any(|n| n == "processes_p2002001")
    })
    .await;
    let names = partitions(&app).await;
    for kept in [
        "processes_p1000001",
        "processes_p2000001",
        "processes_p2001001",
    ] {
        assert!(names.iter().any(|n| n == kept), "{kept} kept: {names:?}");
    }
    let client = app.pool.get().await.unwrap();
    let (processes, rejections): (i64, i64) = {
        let r = client
            .query_one(
                "select (select count(*) from processes), (select count(*) from process_errors)",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(processes, 5 + 1 + 3, "the 30 of p1 are gone");
    assert_eq!(rejections, 5 + 3, "the rejections of p1 went with it");
    assert!(
        client
            .query_opt(
                "select 1 from pg_class where relname = 'process_errors_p1'",
                &[]
            )
            .await
            .unwrap()
            .is_none(),
        "dropped, not left detached"
    );
    assert_counts_exact(&app, &[&a, &b]).await;
    // A process of a dropped partition is gone for the API too.
    assert_eq!(app.get(&a.key, "/v3/processes/1").await.status(), 404);
    // The open process stays, old as it is, and so does its partition ...
    let open: i64 = client
        .query_one(
            "select id from processes where org_id = $1 and status = 'queued'",
            &[&b.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(app.process(&b, open).await["status"], "queued");
    // ... until it ends (long enough ago): then the partition goes too.
    client
        .execute(
            "update processes set status = 'failed', completed_at = now() - interval '2 hours'
              where org_id = $1 and id = $2",
            &[&b.id, &open],
        )
        .await
        .unwrap();
    wait_for_partitions(
        &app,
        "p1000001 dropped once its last process ended",
        |names| !names.iter().any(|n| n == "processes_p1000001"),
    )
    .await;
    assert_counts_exact(&app, &[&a, &b]).await;
    assert_eq!(app.process_count().await, 3, "the recent ones stay");
}

/// Webhook deliveries whose retries ended longer ago than the retention
/// time are removed; later failures and pending deliveries are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_webhook_deliveries_are_removed_after_their_time() {
    let mut app = spawn_app_with(0, |s| {
        s.retention.failed_deliveries_secs = 3600;
        s.retention.sweep_secs = 1;
    })
    .await;
    let a = app.org_with_vehicles().await;
    let client = app.pool.get().await.unwrap();
    let hook: i64 = client
        .query_one(
            "insert into webhooks (org_id, url, secret) values ($1, 'http://127.0.0.1:9/hook', $2)
             returning id",
            &[&a.id, &vec![7u8; 24]],
        )
        .await
        .unwrap()
        .get(0);
    // Failed two hours ago (twice), ten minutes ago, and one pending whose
    // next attempt is a day away (so the sender leaves it alone).
    client
        .execute(
            "insert into webhook_deliveries
                    (webhook_id, event_id, org_id, process_id, failed_at, last_error, next_attempt_at)
             select $1, gen_random_uuid(), $2, 1, f,
                    case when f is not null then 'HTTP 500' end, now() + interval '1 day'
               from unnest(array[now() - interval '2 hours', now() - interval '2 hours',
                                 now() - interval '10 minutes', null]) as f",
            &[&hook, &a.id],
        )
        .await
        .unwrap();

    app.start_worker().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client
            .query_one(
                "select count(*) filter (where failed_at is not null),
                        count(*) filter (where failed_at is null),
                        count(*) filter (where failed_at < now() - interval '1 hour')
                   from webhook_deliveries",
                &[],
            )
            .await
            .unwrap();
        let (failed, pending, old): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        assert_eq!(pending, 1, "the pending delivery is kept");
        if old == 0 {
            assert_eq!(failed, 1, "the later failure is kept");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{old} deliveries failed two hours ago are still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// No partition is dropped while a `pg_dump` reads the database (a table
/// dropped between a dump's reading of the catalog and its locking of the
/// tables fails the dump); once the dump ends, the next sweep drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_partition_is_dropped_while_a_dump_reads_the_database() {
    let mut app = spawn_app_with(0, |s| {
        s.retention.processes_secs = 3600;
        s.retention.sweep_secs = 1;
    })
    .await;
    // p0 and p1 are empty and every id of theirs drawn: expired.
    next_id_is(&app, 1_000_001).await;
    let mut config: tokio_postgres::Config =
        app.settings.database.url.expose_secret().parse().unwrap();
    config.application_name("pg_dump");
    let (dump, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let connection = tokio::spawn(connection);

    app.start_worker().await;
    // A sweep ran with the dump connected: it added the partitions ahead
    // of id 1,000,001 ...
    wait_for_partitions(&app, "partitions ahead", |names| {
        names.iter().any(|n| n == "processes_p2000001")
    })
    .await;
    // ... and dropped nothing.
    let names = partitions(&app).await;
    for kept in ["processes_p0", "processes_p1"] {
        assert!(names.iter().any(|n| n == kept), "{kept} kept: {names:?}");
    }

    drop(dump);
    let _ = connection.await;
    wait_for_partitions(&app, "p0 and p1 dropped once the dump ended", |names| {
        !names
            .iter()
            .any(|n| n == "processes_p0" || n == "processes_p1")
    })
    .await;
}
