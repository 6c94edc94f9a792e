//! Routing batches to the express or a bulk queue (no worker runs, so what
//! is accepted stays open): an organization with a backlog keeps one bulk
//! queue of its own, whatever its id.

use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::json;

async fn post(app: &TestApp, org: &Org, n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(
            app.upsert_accepted(
                org,
                "vehicle",
                json!([{"identifiers": {"ext_id": format!("r{i}")}}]),
            )
            .await,
        );
    }
    ids
}

/// The queue of each of `org`'s processes, in acceptance order.
async fn queues(app: &TestApp, org: &Org) -> Vec<Option<String>> {
    let client = app.pool.get().await.unwrap();
    objectsync_testkit::column(
        &client,
        "select queue from processes where org_id = $1 order by id",
        &[&org.id],
    )
    .await
}

/// The one bulk queue of `org`'s batches after its first `bulk_after`,
/// which went to the express queue.
async fn bulk_queue(app: &TestApp, org: &Org) -> String {
    let t = app.topology();
    let all = queues(app, org).await;
    let (express, bulk) = all.split_at(t.bulk_after as usize);
    assert!(
        express.iter().all(|q| q.as_deref() == Some(&t.express)),
        "{all:?}"
    );
    let first = bulk[0].clone().expect("recorded");
    assert!(t.is_bulk(&first), "{all:?}");
    assert!(bulk.iter().all(|q| q.as_deref() == Some(&first)), "{all:?}");
    first
}

async fn complete_all(app: &TestApp, org: &Org) {
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "update processes set status = 'completed', completed_at = now(), footprint_keys = null
              where org_id = $1",
            &[&org.id],
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_keeps_one_bulk_queue_until_its_backlog_is_gone() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let k = app.topology().bulk_after as usize;
    post(&app, &org, k + 5).await;
    bulk_queue(&app, &org).await;
    let messages = app.batch_depth().await;
    assert_eq!(messages as usize, k + 5, "every batch is on a queue");

    // Applied (as a worker would have): the next batch is express again.
    complete_all(&app, &org).await;
    post(&app, &org, 1).await;
    let all = queues(&app, &org).await;
    assert_eq!(
        all.last().unwrap().as_deref(),
        Some(app.topology().express.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backlogs_get_two_bulk_queues_even_when_the_ids_collide() {
    let app = spawn_app_with(0, |_| {}).await;
    let t = app.topology();
    let first = app.org_with_vehicles().await;
    let second = loop {
        let org = app.org_with_vehicles().await;
        if t.hash_partition(org.id) == t.hash_partition(first.id) {
            break org;
        }
    };
    let k = t.bulk_after as usize;
    post(&app, &first, k + 3).await;
    post(&app, &second, k + 3).await;
    let (a, b) = (
        bulk_queue(&app, &first).await,
        bulk_queue(&app, &second).await,
    );
    assert_ne!(a, b, "the second backlog was put behind the first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_start_a_backlog_together_choose_one_bulk_queue() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let k = app.topology().bulk_after as usize;
    post(&app, &org, k).await;
    let together = (0..12).map(|i| {
        app.upsert_accepted(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": format!("t{i}")}}]),
        )
    });
    futures_util::future::join_all(together).await;
    bulk_queue(&app, &org).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_accepted_before_queues_were_recorded_keeps_its_hash_partition() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    post(&app, &org, 2).await;
    // As an earlier version left them: queued in the hash partition, with
    // no queue recorded.
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "update processes set queue = null where org_id = $1",
            &[&org.id],
        )
        .await
        .unwrap();
    post(&app, &org, 1).await;
    let all = queues(&app, &org).await;
    let t = app.topology();
    assert_eq!(
        all.last().unwrap().as_deref(),
        Some(t.hash_partition(org.id))
    );
}
