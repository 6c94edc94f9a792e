//! Retention as the app role (`objectsync_app`), which may change no table:
//! the sweeper adds partitions ahead and drops expired ones through the
//! functions of migrations V47 and V48, which run with their owner's rights
//! and touch the partitions of `processes` and `process_errors` only.

use std::time::{Duration, Instant};

use objectsync_infra::db;
use objectsync_testkit::{AppLogin, spawn_app_with};
use tokio_postgres::error::SqlState;

use crate::retention::{add, assert_counts_exact, next_id_is, partitions, wait_for_partitions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_of_the_app_role_adds_partitions_ahead_and_drops_expired_ones() {
    let login = AppLogin::create().await;
    let mut app = spawn_app_with(0, |s| {
        s.database.url = login.url(s.database.url.expose_secret()).into();
        s.retention.processes_secs = 3600;
        s.retention.sweep_secs = 1;
        s.retention.partition_min_processes = 1_000;
        s.retention.partition_secs = 60;
    })
    .await;
    let url = app.settings.database.url.expose_secret().to_owned();
    assert!(url.contains(&login.name), "{url}");
    let (a, b) = (app.org_with_vehicles().await, app.org_with_vehicles().await);
    // p1: ended two hours ago, past the retention of an hour.
    add(&app, &a, 20, "completed", "2 hours", 2).await;
    add(&app, &b, 10, "failed", "3 hours", 0).await;
    // p1000001: ended long ago too, but one process is still open; and
    // every id of it drawn, so partitions past 2000001 are needed.
    next_id_is(&app, 1_000_001).await;
    add(&app, &a, 5, "completed", "2 hours", 1).await;
    add(&app, &b, 1, "queued", "5 hours", 0).await;
    next_id_is(&app, 2_000_001).await;
    assert_counts_exact(&app, &[&a, &b]).await;

    app.start_worker().await;
    // Sized by the rate of ids: two past the ids drawn, at least.
    wait_for_partitions(&app, "partitions ahead, made as the app role", |names| {
        let ahead = names.iter().filter(|n| {
            n.strip_prefix("processes_p")
                .and_then(|lo| lo.parse::<i64>().ok())
                .is_some_and(|lo| lo >= 2_000_001)
        });
        ahead.count() >= 2
    })
    .await;
    wait_for_partitions(&app, "p0 and p1 dropped as the app role", |names| {
        !names
            .iter()
            .any(|n| n == "processes_p0" || n == "processes_p1")
    })
    .await;
    let owner = app.pool.get().await.unwrap();
    let (processes, rejections, gone): (i64, i64, bool) = {
        let r = owner
            .query_one(
                "select (select count(*) from processes), (select count(*) from process_errors),
                        to_regclass('process_errors_p1') is null",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(processes, 5 + 1, "the 30 of p1 are gone");
    assert_eq!(rejections, 5, "the rejections of p1 went with them");
    assert!(gone, "dropped, not left detached");
    assert_counts_exact(&app, &[&a, &b]).await;

    // Ingest, as the app role too, accepts batches into the partition the
    // worker made, and the worker applies them.
    let p = app
        .upsert_and_wait(
            &a,
            "vehicle",
            serde_json::json!([{"identifiers": {"ext_id": "v-1"}, "attributes": {"name": "V"}}]),
        )
        .await;
    assert_eq!(p["id"], 2_000_001, "{p}");
    assert_eq!(p["status"], "completed", "{p}");

    // Once the open process ends (long enough ago), its partition goes too.
    owner
        .execute(
            "update processes set status = 'failed', completed_at = now() - interval '2 hours'
              where org_id = $1 and status = 'queued'",
            &[&b.id],
        )
        .await
        .unwrap();
    wait_for_partitions(&app, "p1000001 dropped as the app role", |names| {
        !names.iter().any(|n| n == "processes_p1000001")
    })
    .await;
    assert_counts_exact(&app, &[&a, &b]).await;
    assert_eq!(app.process_count().await, 1, "the new one stays");
}

/// The SQLSTATE `sql` fails with.
async fn refused(client: &tokio_postgres::Client, sql: &str) -> SqlState {
    let e = client
        .batch_execute(sql)
        .await
        .expect_err(&format!("the app role ran {sql}"));
    e.code().cloned().unwrap_or_else(|| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_refuse_what_is_not_a_partition_and_wait_for_a_lock_briefly() {
    let app = spawn_app_with(0, |_| {}).await;
    let login = AppLogin::create().await;
    let client = db::connect(&login.url(app.settings.database.url.expose_secret()))
        .await
        .unwrap();
    // The app role itself may not detach or drop a partition.
    for sql in [
        "alter table processes detach partition processes_p0 concurrently",
        "alter table processes detach partition processes_p0",
        "drop table processes_p0",
    ] {
        assert_eq!(
            refused(&client, sql).await,
            SqlState::INSUFFICIENT_PRIVILEGE,
            "{sql}"
        );
    }
    // Nor do the functions, but on partitions of processes: no such
    // partition; one still attached; a table of the caller's own of the
    // same name (a temporary one, found before public by no search_path of
    // theirs); a negative number.
    client
        .batch_execute("create temp table processes_p77 (x int)")
        .await
        .unwrap();
    for sql in [
        "select processes_detach_partition(12345, now())",
        "select processes_detach_partition(-1, now())",
        "select * from processes_drop_partition(1, now())",
        "select * from processes_drop_partition(12345, now())",
        "select * from processes_drop_partition(77, now())",
        "select process_errors_attach_partition(1)",
        "select process_errors_attach_partition(77)",
    ] {
        assert_eq!(
            refused(&client, sql).await,
            SqlState::INVALID_PARAMETER_VALUE,
            "{sql}"
        );
    }
    client
        .batch_execute("select * from pg_temp.processes_p77")
        .await
        .expect("the caller's table is left alone");
    let names = partitions(&app).await;
    assert_eq!(
        names,
        ["processes_p0", "processes_p1", "processes_p1000001"]
    );

    // p0 (empty, below id 1) is expired. While a transaction reads
    // processes, the detach waits for its lock 500 ms, then gives up
    // having changed nothing.
    let mut owner = app.pool.get().await.unwrap();
    let reading = owner.transaction().await.unwrap();
    reading
        .batch_execute("select count(*) from processes")
        .await
        .unwrap();
    let started = Instant::now();
    let e = client
        .query_one("select processes_detach_partition(0, now())", &[])
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(e.code(), Some(&SqlState::LOCK_NOT_AVAILABLE), "{e}");
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    reading.rollback().await.unwrap();
    assert_eq!(partitions(&app).await, names);

    // Then it detaches and drops, as the app role.
    let detached: bool = client
        .query_one("select processes_detach_partition(0, now())", &[])
        .await
        .unwrap()
        .get(0);
    assert!(detached);
    let dropped = client
        .query_one("select * from processes_drop_partition(0, now())", &[])
        .await
        .unwrap();
    assert_eq!((dropped.get::<_, i64>(0), dropped.get::<_, i64>(1)), (0, 0));
    assert_eq!(
        partitions(&app).await,
        ["processes_p1", "processes_p1000001"]
    );
    // p1 is not expired (no id of it drawn yet): nothing done.
    let detached: bool = client
        .query_one("select processes_detach_partition(1, now())", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!detached);
}
