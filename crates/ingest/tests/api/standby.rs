//! Reads on a hot standby (`database.read_url`), against a real streaming
//! standby of a scratch primary (see `objectsync_testkit::standby_postgres`):
//! with the standby's WAL replay paused, the record lists, associated
//! records and the console's overview show what the standby holds while
//! the process a producer polls shows what the primary holds; a standby
//! stopped under load makes those reads 200 (from the primary) or 503,
//! never 500; started again, it serves them again. A standby further
//! behind than `database.read_max_lag_ms` gives its reads to the primary
//! until it catches up.

use std::time::{Duration, Instant};

use objectsync_infra::db::{self, STANDBY_RETRY};
use objectsync_testkit::standby_postgres::StandbyPair;
use objectsync_testkit::{Org, Sandbox, TestApp, console_card, spawn_app_in};
use serde_json::{Value, json};
use tokio_postgres::Client;

/// Vehicles listed and the `count` beside them, as the API answers.
async fn vehicles(app: &TestApp, org: &Org) -> (u16, i64) {
    let resp = app
        .get(&org.key, "/v3/objects/vehicle/records?limit=100&page_num=1")
        .await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or_default();
    (status, body["count"].as_i64().unwrap_or(-1))
}

/// Garages linked to vehicle `v1`.
async fn garages_of_v1(app: &TestApp, org: &Org) -> (u16, usize) {
    let resp = app
        .get(
            &org.key,
            "/v3/objects/vehicle/associated-records?ext_id=v1&type=garage",
        )
        .await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or_default();
    (status, body["items"].as_array().map_or(0, Vec::len))
}

/// Waits until the standby has replayed everything the primary wrote.
async fn caught_up(primary: &Client, standby: &Client) {
    let position: String = primary
        .query_one("select pg_current_wal_insert_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done: bool = standby
            .query_one(
                "select pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&position],
            )
            .await
            .unwrap()
            .get(0);
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "the standby did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pauses the standby's WAL replay and waits until it is paused.
async fn pause_replay(standby: &Client) {
    standby
        .execute("select pg_wal_replay_pause()", &[])
        .await
        .unwrap();
    for _ in 0..500 {
        let state: String = standby
            .query_one("select pg_get_wal_replay_pause_state()", &[])
            .await
            .unwrap()
            .get(0);
        if state == "paused" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the standby's replay did not pause");
}

fn vehicle(ext_id: &str, garages: &[&str]) -> Value {
    let linked: Vec<Value> = garages
        .iter()
        .map(|g| json!({"identifiers": {"ext_id": g}}))
        .collect();
    json!({"identifiers": {"ext_id": ext_id}, "attributes": {"name": ext_id},
           "associations": [{"object_type": "garage", "records": linked}]})
}

/// A primary and its streaming standby of their own, and an app (one
/// worker) whose lag-tolerant reads go to the standby while it is at most
/// `max_lag_ms` behind; sessions on both servers' sandbox database, and
/// the standby's URL.
async fn on_a_standby(
    kind: &str,
    max_lag_ms: u64,
) -> (StandbyPair, TestApp, Client, Client, String) {
    let pg = tokio::task::spawn_blocking(StandbyPair::start)
        .await
        .unwrap();
    let sandbox = Sandbox::create_on(kind, Some(&pg.primary_url("postgres"))).await;
    let standby_url = pg.standby_url(sandbox.database());
    let primary = db::connect(&pg.primary_url(sandbox.database()))
        .await
        .unwrap();
    let app = spawn_app_in(sandbox, 1, |s| {
        s.database.read_url = Some(standby_url.as_str().into());
        s.database.read_max_lag_ms = max_lag_ms;
    })
    .await;
    let standby = db::connect(&standby_url).await.unwrap();
    (pg, app, primary, standby, standby_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_tolerant_reads_go_to_the_standby_and_to_the_primary_while_it_is_down() {
    // Replay stays paused for seconds below: far within the bound, so the
    // reads stay on the standby however slow the machine.
    let (pg, app, primary, standby, standby_url) = on_a_standby("standby", 600_000).await;
    let in_recovery: bool = standby
        .query_one("select pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery, "the read URL names a hot standby");

    let org = app.org_with_vehicles_and_garages().await;
    let cookie = app.console_cookie().await;
    app.upsert_and_wait(
        &org,
        "garage",
        json!([{"identifiers": {"ext_id": "g1"}, "attributes": {"name": "North"}}]),
    )
    .await;
    app.upsert_and_wait(
        &org,
        "vehicle",
        json!([vehicle("v1", &[]), vehicle("v2", &[])]),
    )
    .await;
    caught_up(&primary, &standby).await;
    assert_eq!(vehicles(&app, &org).await, (200, 2));

    // The standby stops replaying: what it serves stands still.
    pause_replay(&standby).await;
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([vehicle("v1", &["g1"]), vehicle("v3", &[])]),
        )
        .await;
    // The producer's poll reads the primary: its batch is done...
    assert_eq!(p["status"], "completed", "{p}");
    assert_eq!(p["info"]["records"]["processed"], 2, "{p}");
    // ...while the lists and the overview come from the standby.
    assert_eq!(vehicles(&app, &org).await, (200, 2), "{}", pg.log());
    assert_eq!(garages_of_v1(&app, &org).await, (200, 0));
    let live = app.console_page(&cookie, "/console/overview/live").await;
    assert_eq!(console_card(&live, "applied-hour"), "3");

    standby
        .execute("select pg_wal_replay_resume()", &[])
        .await
        .unwrap();
    caught_up(&primary, &standby).await;
    assert_eq!(vehicles(&app, &org).await, (200, 3));
    assert_eq!(garages_of_v1(&app, &org).await, (200, 1));
    let live = app.console_page(&cookie, "/console/overview/live").await;
    assert_eq!(console_card(&live, "applied-hour"), "5");

    // The dashboard views and their role are there on the standby too.
    for view in [
        "organizations",
        "backlog",
        "throughput_per_minute",
        "org_usage",
    ] {
        let sql =
            format!("set role objectsync_dashboard; select * from dashboard.{view}; reset role");
        standby
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("dashboard.{view} on the standby: {e}"));
    }
    drop(standby);

    // The standby stops while lists are being read: 200 or 503, never 500.
    let reading = {
        let (address, key) = (app.address.clone(), org.key.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                let resp = client
                    .get(format!(
                        "{address}/v3/objects/vehicle/records?limit=100&page_num=1"
                    ))
                    .header("api-key", &key)
                    .send()
                    .await
                    .expect("ingest answers");
                statuses.push(resp.status().as_u16());
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| pg.stop_standby());
    let statuses = reading.await.unwrap();
    let tally = |code| statuses.iter().filter(|s| **s == code).count();
    eprintln!(
        "standby stopped under reads: {} answers, {} × 200, {} × 503",
        statuses.len(),
        tally(200),
        tally(503)
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.len() > 10, "{statuses:?}");

    // Down: the same reads from the primary, up to date.
    assert_eq!(vehicles(&app, &org).await, (200, 3));
    assert_eq!(garages_of_v1(&app, &org).await, (200, 1));
    let live = app.console_page(&cookie, "/console/overview/live").await;
    assert_eq!(console_card(&live, "applied-hour"), "5");
    let resp = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "a standby down is no reason to be unready"
    );
    let ready: Value = resp.json().await.unwrap();
    assert_eq!(ready["read_standby"], "down", "{ready}");

    // Back: once the retry period is over, the standby serves them again.
    tokio::task::block_in_place(|| pg.start_standby());
    let standby = db::connect(&standby_url).await.unwrap();
    caught_up(&primary, &standby).await;
    tokio::time::sleep(STANDBY_RETRY + Duration::from_millis(200)).await;
    pause_replay(&standby).await;
    app.upsert_and_wait(&org, "vehicle", json!([vehicle("v4", &[])]))
        .await;
    assert_eq!(vehicles(&app, &org).await, (200, 3), "{}", pg.log());
    assert_eq!(read_standby(&app).await, "up");
    standby
        .execute("select pg_wal_replay_resume()", &[])
        .await
        .unwrap();
}

/// The name the record list gives vehicle `ext_id`.
async fn name_of(app: &TestApp, org: &Org, ext_id: &str) -> String {
    let body: Value = app
        .get(&org.key, "/v3/objects/vehicle/records?limit=100&page_num=1")
        .await
        .json()
        .await
        .unwrap();
    let records = body["records"].as_array().expect("a record list");
    let record = records
        .iter()
        .find(|r| r["identifiers"]["ext_id"] == ext_id)
        .unwrap_or_else(|| panic!("{ext_id} listed: {body}"));
    record["attributes"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn read_standby(app: &TestApp) -> Value {
    let ready: Value = reqwest::get(app.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["read_standby"].clone()
}

/// Polls `check` every 50 ms until it holds, for up to `limit`; how long
/// that took.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_too_far_behind_gives_its_reads_to_the_primary_until_it_catches_up() {
    let max_lag = Duration::from_secs(3);
    let (pg, app, primary, standby, _) =
        on_a_standby("standby_lag", max_lag.as_millis() as u64).await;
    let org = app.org_with_vehicles_and_garages().await;
    app.upsert_and_wait(&org, "vehicle", json!([vehicle("v1", &[])]))
        .await;
    caught_up(&primary, &standby).await;
    // Up once a measurement after the catch-up (the start may have left
    // it behind for a moment on a slow machine).
    within(max_lag * 4, "the standby is up", || async {
        read_standby(&app).await == "up"
    })
    .await;
    assert_eq!(vehicles(&app, &org).await, (200, 1));

    // Replay stops and the primary goes on: past the bound the lists come
    // from the primary, up to date.
    pause_replay(&standby).await;
    app.upsert_and_wait(&org, "vehicle", json!([vehicle("v2", &[])]))
        .await;
    let took = within(max_lag * 4, "reads go to the primary", || async {
        vehicles(&app, &org).await == (200, 2)
    })
    .await;
    eprintln!("the primary served the lists {took:?} after the write");
    assert_eq!(read_standby(&app).await, "behind");
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "a standby behind is no reason to be unready"
    );

    // Replay goes on: once it caught up, the standby serves them again.
    standby
        .execute("select pg_wal_replay_resume()", &[])
        .await
        .unwrap();
    caught_up(&primary, &standby).await;
    within(max_lag * 4, "the standby is up again", || async {
        read_standby(&app).await == "up"
    })
    .await;
    // Shown by a change the standby has not replayed, read at once (far
    // within the bound): the list still has the old name.
    pause_replay(&standby).await;
    primary
        .execute(
            "update records set attributes = attributes || '{\"name\": \"renamed\"}'
              where ext_id = 'v1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(name_of(&app, &org, "v1").await, "v1", "{}", pg.log());
    standby
        .execute("select pg_wal_replay_resume()", &[])
        .await
        .unwrap();
    caught_up(&primary, &standby).await;
    assert_eq!(name_of(&app, &org, "v1").await, "renamed");
}
