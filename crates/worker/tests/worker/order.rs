//! Acceptance order: an organization's records end as if its batches had
//! been applied one at a time in processId order, whatever the workers do.
//!
//! A small reference model applies batches serially; random sequences of
//! upserts (sets, partial updates, clears), deletes, re-creates, links and
//! unlinks on a small key space go through the HTTP API, and the stored
//! state must equal the model's — with three workers of prefetch 8, and
//! with every message delivered in shuffled order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use objectsync_testkit::{Org, TestApp, spawn_app_with};
use serde_json::{Map, Value, json};

/// A tiny deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const VEHICLES: u64 = 6;
const GARAGES: u64 = 4;

#[derive(Debug, Clone)]
enum Batch {
    /// (object type, records as sent)
    Upsert(&'static str, Vec<Value>),
    Delete(&'static str, Vec<String>),
}

/// The serial reference: records by (type, ext_id) → attributes, and links
/// as (vehicle ext_id, garage ext_id).
#[derive(Debug, Default, PartialEq, Eq)]
struct State {
    records: BTreeMap<(String, String), BTreeMap<String, Value>>,
    links: BTreeSet<(String, String)>,
}

impl State {
    fn apply(&mut self, batch: &Batch) {
        match batch {
            Batch::Upsert(t, records) => {
                for r in records {
                    let ext = r["identifiers"]["ext_id"].as_str().unwrap().to_owned();
                    let stored = self.records.entry((t.to_string(), ext)).or_default();
                    for (k, v) in r["attributes"].as_object().unwrap() {
                        if v.is_null() {
                            stored.remove(k);
                        } else {
                            stored.insert(k.clone(), v.clone());
                        }
                    }
                }
                // Associations run after every record of the batch.
                for r in records {
                    let ext = r["identifiers"]["ext_id"].as_str().unwrap();
                    for entry in r["associations"].as_array().into_iter().flatten() {
                        for target in entry["records"].as_array().unwrap() {
                            let g = target["identifiers"]["ext_id"].as_str().unwrap();
                            if !self.records.contains_key(&("garage".into(), g.into())) {
                                continue; // associated_record_not_found
                            }
                            let pair = (ext.to_owned(), g.to_owned());
                            if entry["action"] == "unlink" {
                                self.links.remove(&pair);
                            } else {
                                self.links.insert(pair);
                            }
                        }
                    }
                }
            }
            Batch::Delete(t, exts) => {
                for ext in exts {
                    if self.records.remove(&(t.to_string(), ext.clone())).is_some() {
                        self.links.retain(|(v, g)| match *t {
                            "vehicle" => v != ext,
                            _ => g != ext,
                        });
                    }
                }
            }
        }
    }
}

fn vehicle(rng: &mut Rng, seq: usize) -> Value {
    let mut attributes = Map::new();
    if rng.chance(60) {
        attributes.insert("name".into(), json!(format!("v-{seq}")));
    }
    if rng.chance(60) {
        let year = if rng.chance(25) {
            Value::Null
        } else {
            json!(2000 + seq)
        };
        attributes.insert("price".into(), year);
    }
    if rng.chance(40) {
        let color = match rng.below(3) {
            0 => Value::Null,
            1 => json!("red"),
            _ => json!("blue"),
        };
        attributes.insert("color".into(), color);
    }
    let mut record = json!({
        "identifiers": {"ext_id": format!("v{}", rng.below(VEHICLES))},
        "attributes": attributes,
    });
    if rng.chance(40) {
        let action = if rng.chance(35) { "unlink" } else { "link" };
        record["associations"] = json!([{"object_type": "garage", "action": action,
            "records": [{"identifiers": {"ext_id": format!("g{}", rng.below(GARAGES))}}]}]);
    }
    record
}

fn sequence(seed: u64, len: usize) -> Vec<Batch> {
    let mut rng = Rng(seed);
    (0..len)
        .map(|seq| match rng.below(10) {
            0 => Batch::Delete(
                "vehicle",
                (0..1 + rng.below(2))
                    .map(|_| format!("v{}", rng.below(VEHICLES)))
                    .collect(),
            ),
            1 => Batch::Delete("garage", vec![format!("g{}", rng.below(GARAGES))]),
            2 | 3 => Batch::Upsert(
                "garage",
                (0..1 + rng.below(2))
                    .map(|_| {
                        json!({"identifiers": {"ext_id": format!("g{}", rng.below(GARAGES))},
                               "attributes": {"name": format!("g-{seq}")}})
                    })
                    .collect(),
            ),
            _ => Batch::Upsert(
                "vehicle",
                (0..1 + rng.below(4))
                    .map(|_| vehicle(&mut rng, seq))
                    .collect(),
            ),
        })
        .collect()
}

async fn send(app: &TestApp, org: &Org, batch: &Batch) -> i64 {
    let (path, body) = match batch {
        Batch::Upsert(t, records) => (
            format!("/v3/objects/{t}/batch/upsert"),
            json!({"records": records}),
        ),
        Batch::Delete(t, exts) => (
            format!("/v3/objects/{t}/batch/delete"),
            json!({"identifiers": {"ext_ids": exts}}),
        ),
    };
    let resp = app
        .post_bytes(&org.key, &path, body.to_string().into_bytes())
        .await;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(status, 202, "{answer}");
    answer["processId"].as_i64().unwrap()
}

/// Sends `batches` in order; their process ids.
async fn send_all(app: &TestApp, org: &Org, batches: &[Batch]) -> Vec<i64> {
    let mut ids = Vec::with_capacity(batches.len());
    for b in batches {
        ids.push(send(app, org, b).await);
    }
    ids
}

/// Takes every waiting batch off the queues and publishes them again in an
/// order shuffled by `seed`; how many.
async fn redeliver_shuffled(app: &TestApp, seed: u64) -> usize {
    let mut messages = app.take_batches().await;
    let mut rng = Rng(seed);
    for i in (1..messages.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        messages.swap(i, j);
    }
    let n = messages.len();
    for (body, props) in messages {
        app.publish_raw_with(&body, props).await;
    }
    n
}

/// What the database holds, in the model's terms.
async fn stored(app: &TestApp) -> State {
    let client = app.pool.get().await.unwrap();
    let mut state = State::default();
    for row in client
        .query(
            "select t.name, r.ext_id, r.attributes from records r
               join object_types t on t.org_id = r.org_id and t.id = r.type_id",
            &[],
        )
        .await
        .unwrap()
    {
        let attrs: Value = row.get(2);
        let attrs = attrs.as_object().unwrap().clone().into_iter().collect();
        state.records.insert((row.get(0), row.get(1)), attrs);
    }
    for row in client
        .query(
            "select v.ext_id, g.ext_id from record_links l
               join records v on v.org_id = l.org_id and v.type_id = l.src_type and v.id = l.src_id
               join records g on g.org_id = l.org_id and g.type_id = l.dst_type and g.id = l.dst_id
               join object_types t on t.org_id = l.org_id and t.id = l.src_type
              where t.name = 'vehicle' and l.dst_type <> l.src_type",
            &[],
        )
        .await
        .unwrap()
    {
        state.links.insert((row.get(0), row.get(1)));
    }
    state
}

async fn wait_all(app: &TestApp, org: &Org, ids: &[i64]) {
    for id in ids {
        let p = app.wait_for_process(org, *id).await;
        assert_eq!(p["status"], "completed", "{p}");
    }
}

fn model_of(batches: &[Batch]) -> State {
    let mut model = State::default();
    for b in batches {
        model.apply(b);
    }
    model
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_batches_end_as_applied_one_by_one_with_three_workers() {
    let app = spawn_app_with(3, |s| s.worker.prefetch = 8).await;
    let org = app.org_with_vehicles_and_garages().await;
    for seed in [7, 1234] {
        let batches = sequence(seed, 50);
        let ids = send_all(&app, &org, &batches).await;
        wait_all(&app, &org, &ids).await;
        let expected = model_of(&batches);
        assert_eq!(stored(&app).await, expected, "seed {seed}");
        // Start the next sequence from nothing.
        let client = app.pool.get().await.unwrap();
        client
            .batch_execute("delete from record_links; delete from records;")
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_delivered_in_shuffled_order_end_as_applied_in_acceptance_order() {
    // Batches that wait for older ones still in the queue give their place
    // back soon instead of after the default 5 s (which made this test the
    // suite's longest: 36 s of 60 batches).
    let mut app = spawn_app_with(0, |s| {
        s.worker.prefetch = 8;
        s.worker.order_wait_ms = 300;
    })
    .await;
    let org = app.org_with_vehicles_and_garages().await;
    let batches = sequence(99, 60);
    let ids = send_all(&app, &org, &batches).await;
    assert_eq!(redeliver_shuffled(&app, 42).await, batches.len());
    for _ in 0..3 {
        app.start_worker().await;
    }
    wait_all(&app, &org, &ids).await;
    assert_eq!(stored(&app).await, model_of(&batches));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_sequential_batches_on_the_same_records_end_with_the_last() {
    let app = spawn_app_with(2, |s| s.worker.prefetch = 4).await;
    let org = app.org_with_vehicles().await;
    let mut ids = Vec::new();
    for n in 0..60 {
        let records: Vec<Value> = (0..50)
            .map(|i| json!({"identifiers": {"ext_id": format!("car-{i}")}, "attributes": {"price": n}}))
            .collect();
        ids.push(app.upsert_accepted(&org, "vehicle", json!(records)).await);
    }
    wait_all(&app, &org, &ids).await;
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(stored.len(), 50);
    for (ext, r) in stored {
        assert_eq!(r["attributes"]["price"], 59, "{ext}");
    }
    // Serial counts: the first batch created them, every other updated.
    let first = app.process(&org, ids[0]).await;
    assert_eq!(first["info"]["records"]["created"], 50);
    let last = app.process(&org, ids[59]).await;
    assert_eq!(last["info"]["records"]["updated"], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clear_after_a_set_wins() {
    let app = spawn_app_with(2, |s| s.worker.prefetch = 4).await;
    let org = app.org_with_vehicles().await;
    for round in 0..10 {
        let ext = format!("c{round}");
        let set = app
            .upsert_accepted(
                &org,
                "vehicle",
                json!([{"identifiers": {"ext_id": ext}, "attributes": {"name": "A", "price": 1}}]),
            )
            .await;
        let clear = app
            .upsert_accepted(
                &org,
                "vehicle",
                json!([{"identifiers": {"ext_id": ext}, "attributes": {"price": null}}]),
            )
            .await;
        wait_all(&app, &org, &[set, clear]).await;
    }
    for (ext, r) in app.records_by_ext_id(&org, "vehicle").await {
        assert_eq!(r["attributes"], json!({"name": "A"}), "{ext}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waiting_too_long_gives_way_and_still_applies_in_order() {
    let mut app = spawn_app_with(0, |s| s.worker.order_wait_ms = 200).await;
    let org = app.org_with_vehicles().await;
    let older = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "x"}, "attributes": {"price": 1}}]),
        )
        .await;
    let taken = app.take_batches().await;
    let newer = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "x"}, "attributes": {"price": 2}}]),
        )
        .await;
    app.start_worker().await;
    // The newer batch waits for the older one, which is not on the queue,
    // and gives its place back again and again without failing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.process(&org, newer).await["status"], "in_process");
    let (body, props) = taken.into_iter().next().unwrap();
    app.publish_raw_with(&body, props).await;
    wait_all(&app, &org, &[older, newer]).await;
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(stored["x"]["attributes"]["price"], 2);
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.batch_depth().await > 0 {
        assert!(Instant::now() < deadline, "a copy was left behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = app.pool.get().await.unwrap();
    let dead: i64 = client
        .query_one("select count(*) from dead_letters", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(dead, 0);
}

/// Batches that only upsert vehicles by `ext_id` (no links, no deletes):
/// nearly every one conflicts with the ones before it on six records.
fn plain_sequence(seed: u64, len: usize) -> Vec<Batch> {
    let mut rng = Rng(seed);
    (0..len)
        .map(|seq| {
            let records = (0..1 + rng.below(4))
                .map(|_| {
                    let mut r = vehicle(&mut rng, seq);
                    r.as_object_mut().unwrap().remove("associations");
                    r
                })
                .collect();
            Batch::Upsert("vehicle", records)
        })
        .collect()
}

/// How many records each batch creates when applied one at a time: the
/// first record of a batch naming a row that does not exist yet.
fn serial_creates(batches: &[Batch]) -> Vec<i64> {
    let mut exists = BTreeSet::new();
    batches
        .iter()
        .map(|b| match b {
            Batch::Upsert(_, records) => records
                .iter()
                .filter(|r| exists.insert(r["identifiers"]["ext_id"].as_str().unwrap().to_owned()))
                .count() as i64,
            Batch::Delete(..) => 0,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_plain_upserts_end_as_applied_one_by_one_counts_included() {
    // Shuffled, many batches wait for older ones still in the queue: they
    // give their place back soon instead of after the default 5 s.
    let mut app = spawn_app_with(0, |s| {
        s.worker.prefetch = 8;
        s.worker.order_wait_ms = 300;
    })
    .await;
    let org = app.org_with_vehicles().await;
    // Every batch names one of six records or more: nearly every one
    // overlaps the ones before it still open. Delivered in shuffled order
    // to three workers, then in order to three workers.
    for (seed, shuffle) in [(5, true), (77, false)] {
        let batches = plain_sequence(seed, 80);
        let ids = send_all(&app, &org, &batches).await;
        if shuffle {
            redeliver_shuffled(&app, seed).await;
            for _ in 0..3 {
                app.start_worker().await;
            }
        }
        wait_all(&app, &org, &ids).await;
        assert_eq!(stored(&app).await, model_of(&batches), "seed {seed}");
        for ((id, b), created) in ids.iter().zip(&batches).zip(serial_creates(&batches)) {
            let p = app.process(&org, *id).await;
            let Batch::Upsert(_, records) = b else {
                unreachable!()
            };
            let sent = records.len() as i64;
            assert_eq!(
                p["info"]["records"],
                json!({"total": sent, "processed": sent, "created": created,
                       "updated": sent - created, "deleted": 0, "failed": 0}),
                "seed {seed}, process {id}"
            );
        }
        let client = app.pool.get().await.unwrap();
        client.batch_execute("delete from records").await.unwrap();
    }
}
