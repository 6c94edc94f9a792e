//! Fairness between organizations: a quiet organization's batch is not
//! applied after another organization's whole backlog, whatever their ids.

use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::{Value, json};

const BACKLOG: usize = 120;

/// Queues `BACKLOG` batches of `busy` (no worker runs yet), then a lone
/// batch of `quiet`; starts a worker and returns how many of the busy
/// batches were applied before the lone one.
async fn flood_then_lone_batch(app: &mut TestApp, busy: &Org, quiet: &Org) -> i64 {
    for b in 0..BACKLOG {
        let records: Vec<Value> = (0..20)
            .map(|i| json!({"identifiers": {"ext_id": format!("b{b}-{i}")}}))
            .collect();
        app.upsert_accepted(busy, "vehicle", json!(records)).await;
    }
    let lone = app
        .upsert_accepted(quiet, "vehicle", json!([{"identifiers": {"ext_id": "q"}}]))
        .await;
    let started = std::time::Instant::now();
    app.start_worker().await;
    let done = app.wait_for_process(quiet, lone).await;
    assert_eq!(done["status"], "completed", "{done}");
    let client = app.pool.get().await.unwrap();
    let before: i64 = client
        .query_one(
            "select count(*) from processes b, processes q
              where q.id = $1 and b.org_id = $2 and b.completed_at < q.completed_at",
            &[&lone, &busy.id],
        )
        .await
        .unwrap()
        .get(0);
    eprintln!(
        "the lone batch completed {:?} after the worker started, after {before} of {BACKLOG} busy batches",
        started.elapsed()
    );
    before
}

/// At most this many of the busy organization's batches may go first: the
/// ones it queued in the express lane before its backlog began, and a few
/// rounds of the worker's prefetch.
fn allowed_before(app: &TestApp) -> i64 {
    i64::from(app.topology().bulk_after) + 4 * i64::from(app.settings.worker.prefetch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_organizations_batch_overtakes_another_organizations_backlog() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let busy = app.org_with_vehicles().await;
    let quiet = app.org_with_vehicles().await;
    let topology = app.topology();
    assert_ne!(
        topology.hash_partition(busy.id),
        topology.hash_partition(quiet.id),
        "the two organizations' ids collide; the next test is the one for that"
    );
    let before = flood_then_lone_batch(&mut app, &busy, &quiet).await;
    assert!(
        before <= allowed_before(&app),
        "{before} of the busy organization's {BACKLOG} batches went first"
    );
}

/// The organizations' ids are equal modulo the number of bulk queues: the
/// hash that versions before the express lane routed by put both in one
/// queue, and the quiet batch behind the whole backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_organization_whose_id_collides_with_a_busy_ones_overtakes_its_backlog() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let busy = app.org_with_vehicles().await;
    let topology = app.topology();
    let quiet = loop {
        let org = app.org_with_vehicles().await;
        if topology.hash_partition(org.id) == topology.hash_partition(busy.id) {
            break org;
        }
    };
    let before = flood_then_lone_batch(&mut app, &busy, &quiet).await;
    assert!(
        before <= allowed_before(&app),
        "{before} of the busy organization's {BACKLOG} batches went first"
    );
}

/// Two organizations with backlogs, whose ids collide: they are applied
/// side by side, not the second after the whole of the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backlogs_whose_ids_collide_are_applied_side_by_side() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let first = app.org_with_vehicles().await;
    let topology = app.topology();
    let second = loop {
        let org = app.org_with_vehicles().await;
        if topology.hash_partition(org.id) == topology.hash_partition(first.id) {
            break org;
        }
    };
    for org in [&first, &second] {
        for b in 0..BACKLOG {
            let records: Vec<Value> = (0..20)
                .map(|i| json!({"identifiers": {"ext_id": format!("b{b}-{i}")}}))
                .collect();
            app.upsert_accepted(org, "vehicle", json!(records)).await;
        }
    }
    app.start_worker().await;
    let client = app.pool.get().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let open: i64 = client
            .query_one(
                "select count(*) from processes where status in ('queued', 'in_process')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if open == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{open} still open");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Of the first half applied, the second organization's share: none if
    // it had waited behind the first one's backlog, about half if fair.
    let second_early: i64 = client
        .query_one(
            "select count(*) filter (where org_id = $1) from (
                 select org_id from processes where status = 'completed'
                  order by completed_at limit $2) as early",
            &[&second.id, &(BACKLOG as i64)],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        second_early >= BACKLOG as i64 / 4,
        "only {second_early} of the first {BACKLOG} batches applied were the second organization's"
    );
}
