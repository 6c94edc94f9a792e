//! A lost or wrong-headed older batch does not freeze its organization:
//! batches waiting for it say so, an operator can fail it, the monitor
//! fails it once its message is provably gone, and a message whose headers
//! name another organization ends its own process.

use std::time::{Duration, Instant};

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use objectsync_model::{OrgId, ProcessId};
use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::{Value, json};

use crate::dead_letters::wait_for_dead_letters;

/// The measured scenario: `p1` updates a record by `id` (so it waits for,
/// and blocks, every batch of the organization) and its message is taken
/// off the queue; `p2` (by `ext_id`) and `p3` (another type) come after it.
struct Stuck {
    org: Org,
    record_id: i64,
    p1: i64,
    p2: i64,
    p3: i64,
    /// P1's message, as it was on the queue.
    lost: (Vec<u8>, BasicProperties),
}

async fn stuck(app: &mut TestApp) -> Stuck {
    let org = app.org_with_vehicles_and_garages().await;
    let first = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "x"}, "attributes": {"price": 1}}]),
        )
        .await;
    assert_eq!(first["status"], "completed");
    let record_id = app.records_by_ext_id(&org, "vehicle").await["x"]["identifiers"]["id"]
        .as_i64()
        .unwrap();
    app.stop_workers().await;
    let p1 = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([{"identifiers": {"id": record_id}, "attributes": {"price": 2}}]),
        )
        .await;
    let mut taken = app.take_batches().await;
    assert_eq!(taken.len(), 1, "P1's message, purged");
    let p2 = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "y"}, "attributes": {"price": 3}}]),
        )
        .await;
    let p3 = app
        .upsert_accepted(
            &org,
            "garage",
            json!([{"identifiers": {"ext_id": "g"}, "attributes": {"name": "G"}}]),
        )
        .await;
    app.start_worker().await;
    Stuck {
        org,
        record_id,
        p1,
        p2,
        p3,
        lost: taken.pop().unwrap(),
    }
}

/// What process `id` waits for, as stored.
async fn waiting_for(app: &TestApp, id: i64) -> Option<i64> {
    let client = app.pool.get().await.unwrap();
    client
        .query_one("select waiting_for from processes where id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

/// Polls until `ok` holds (20 s at most).
async fn until<F, Fut>(what: &str, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok().await {
        assert!(Instant::now() < deadline, "still not: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn completed(app: &TestApp, org: &Org, ids: &[i64]) {
    for id in ids {
        let p = app.wait_for_process(org, *id).await;
        assert_eq!(p["status"], "completed", "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_fails_a_lost_batch_and_the_batches_waiting_for_it_go_on() {
    let mut app = spawn_app_with(1, |s| {
        s.worker.order_wait_ms = 200;
        s.worker.fail_lost_after_secs = 0;
    })
    .await;
    let s = stuck(&mut app).await;
    // Both later batches say what they wait for, and keep waiting.
    until("P2 and P3 wait for P1", || async {
        waiting_for(&app, s.p2).await == Some(s.p1) && waiting_for(&app, s.p3).await == Some(s.p1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for id in [s.p2, s.p3] {
        assert_eq!(app.process(&s.org, id).await["status"], "in_process");
    }
    assert_eq!(app.process(&s.org, s.p1).await["status"], "queued");
    let metrics = objectsync_infra::metrics::render();
    assert!(
        metrics.contains("objectsync_batches_blocked_total"),
        "{metrics}"
    );

    let resp = app
        .admin_post(
            &format!("/admin/organizations/{}/processes/{}/fail", s.org.id, s.p1),
            &json!({"reason": "its message was purged", "operator": "Grace"}),
        )
        .await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["failed_by"], "Grace");
    completed(&app, &s.org, &[s.p2, s.p3]).await;
    let p1 = app.process(&s.org, s.p1).await;
    assert_eq!(p1["status"], "failed");
    assert_eq!(
        p1["info"]["error"],
        "failed by an operator: its message was purged"
    );

    // The lost message turns up after all: it is acknowledged, not applied.
    let (body, props) = s.lost;
    app.publish_raw_with(&body, props).await;
    until("the message is consumed", || async {
        app.batch_depth().await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p1 = app.process(&s.org, s.p1).await;
    assert_eq!(p1["status"], "failed", "{p1}");
    let x = &app.records_by_ext_id(&s.org, "vehicle").await["x"];
    assert_eq!(x["identifiers"]["id"], s.record_id);
    assert_eq!(x["attributes"]["price"], 1, "P1 applied nothing");
    let client = app.pool.get().await.unwrap();
    let (failed_by, dead): (Option<String>, i64) = {
        let r = client
            .query_one(
                "select failed_by, (select count(*) from dead_letters) from processes where id = $1",
                &[&s.p1],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(failed_by.as_deref(), Some("Grace"));
    assert_eq!(dead, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_fails_a_batch_whose_message_is_gone() {
    let mut app = spawn_app_with(1, |s| {
        s.worker.order_wait_ms = 200;
        s.worker.heartbeat_secs = 1;
        s.worker.fail_lost_after_secs = 3;
    })
    .await;
    let s = stuck(&mut app).await;
    let p1 = app.wait_for_process(&s.org, s.p1).await;
    assert_eq!(p1["status"], "failed", "{p1}");
    let error = p1["info"]["error"].as_str().unwrap();
    assert!(
        error.contains("its message is lost") && error.contains("send the batch again"),
        "{error}"
    );
    completed(&app, &s.org, &[s.p2, s.p3]).await;
    let x = &app.records_by_ext_id(&s.org, "vehicle").await["x"];
    assert_eq!(x["attributes"]["price"], 1, "P1 applied nothing");
}

/// Writes a worker row that holds `held` and is seen now, as a worker whose
/// prefetch has the message would.
async fn pretend_a_worker_holds(app: &TestApp, org: &Org, held: i64) {
    let holding = json!([{"org_id": org.id, "process_id": held, "since": "2025-01-01T00:00:00Z"}]);
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "insert into workers (id, host, pid, prefetch, started_at, seen_at, holding)
             values ('00000000-0000-0000-0000-00000000000a', 'elsewhere', 1, 4, now(), now(), $1)
             on conflict (id) do update set seen_at = now(), holding = excluded.holding",
            &[&holding],
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_a_worker_holds_is_not_taken_for_lost() {
    let mut app = spawn_app_with(1, |s| {
        s.worker.order_wait_ms = 200;
        s.worker.heartbeat_secs = 1;
        s.worker.fail_lost_after_secs = 2;
    })
    .await;
    let s = stuck(&mut app).await;
    // Everything else says P1 is lost (P2 came round its queue well after
    // P1 was last seen), but a live worker lists P1 among its batches.
    let client = app.pool.get().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        pretend_a_worker_holds(&app, &s.org, s.p1).await;
        assert_eq!(app.process(&s.org, s.p1).await["status"], "queued");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let evidence: bool = client
        .query_one(
            "select came_round_at > now() - interval '2 seconds'
                and waiting_since < now() - interval '4 seconds'
               from processes where id = $1",
            &[&s.p2],
        )
        .await
        .unwrap()
        .get(0);
    assert!(evidence, "P2 waited and came round");
    // The same worker stops beating: not at once (it may hold P1 until the
    // broker notices), but once its row is old, P1 is failed.
    let p1 = app.wait_for_process(&s.org, s.p1).await;
    assert_eq!(p1["status"], "failed", "{p1}");
    completed(&app, &s.org, &[s.p2, s.p3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_lists_the_batches_it_holds_while_they_wait() {
    let mut app = spawn_app_with(1, |s| {
        s.worker.order_wait_ms = 60_000;
        s.worker.heartbeat_secs = 1;
    })
    .await;
    let s = stuck(&mut app).await;
    until(
        "the worker lists P2 and P3 as held, not applying",
        || async {
            let client = app.pool.get().await.unwrap();
            let row = client
                .query_one(
                    "select coalesce(array_agg((h->>'process_id')::int8), '{}'),
                        bool_and(jsonb_array_length(w.applying) = 0)
                   from workers w, jsonb_array_elements(w.holding) h",
                    &[],
                )
                .await
                .unwrap();
            let mut held: Vec<i64> = row.get(0);
            held.sort_unstable();
            held == [s.p2, s.p3] && row.get::<_, Option<bool>>(1) == Some(true)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_naming_another_organization_fails_its_own_process() {
    let mut app = spawn_app_with(0, |_| {}).await;
    let a = app.org_with_vehicles().await;
    let b = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(&a, "vehicle", json!([{"identifiers": {"ext_id": "v"}}]))
        .await;
    let (body, props) = app.take_batches().await.pop().unwrap();
    let mut headers: FieldTable = props.headers().clone().unwrap();
    headers.insert("x-objectsync-org-id".into(), AMQPValue::LongLongInt(b.id));
    app.publish_raw_with(&body, props.with_headers(headers))
        .await;
    app.start_worker().await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let p = loop {
        let p = app.process(&a, id).await;
        if p["status"] == "failed" {
            break p;
        }
        assert!(Instant::now() < deadline, "still {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let error = p["info"]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("names organization {}", b.id))
            && error.contains(&format!("belongs to organization {}", a.id)),
        "{error}"
    );
    // Kept under the process's own organization, and nothing written to
    // either organization.
    let kept = wait_for_dead_letters(&app, 1).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].org_id, kept[0].process_id),
        (Some(OrgId(a.id)), Some(ProcessId(id)))
    );
    assert_eq!(kept[0].object_type.as_deref(), Some("vehicle"));
    assert!(app.records_by_ext_id(&a, "vehicle").await.is_empty());
    assert!(app.records_by_ext_id(&b, "vehicle").await.is_empty());
    let resp = app.get(&b.key, "/v3/processes").await;
    let listed: Value = resp.json().await.unwrap();
    assert_eq!(listed["count"], 0, "{listed}");
}
