//! Links between records (SPEC §4.1 associations, §4.3 reads).

use objectsync_testkit::{Org, TestApp, spawn_app, spawn_app_with, vehicle_definition};
use serde_json::{Value, json};

/// An organization with vehicles and garages, associated, and vehicles
/// associated with themselves too (a vehicle can be a "related" vehicle).
async fn setup(app: &TestApp) -> Org {
    let org = app.org_with_vehicles_and_garages().await;
    let mut v = vehicle_definition();
    v["associations"] = json!(["garage", "vehicle"]);
    app.define_type(&org, "vehicle", &v).await;
    app.define_type(
        &org,
        "owner",
        &json!({"label": "Owners", "attributes": [{"key": "name", "label": "Name", "type": "text"}]}),
    )
    .await;
    org
}

fn link(object_type: &str, ext_ids: &[&str]) -> Value {
    let records: Vec<Value> = ext_ids
        .iter()
        .map(|e| json!({"identifiers": {"ext_id": e}}))
        .collect();
    json!({"object_type": object_type, "records": records})
}

fn unlink(object_type: &str, ext_ids: &[&str]) -> Value {
    let mut v = link(object_type, ext_ids);
    v["action"] = json!("unlink");
    v
}

async fn associated(app: &TestApp, org: &Org, object_type: &str, query: &str) -> (u16, Value) {
    let resp = app
        .get(
            &org.key,
            &format!("/v3/objects/{object_type}/associated-records?{query}"),
        )
        .await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn linked_ext_ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["object"]["ext_id"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_show_from_both_sides_through_both_endpoints() {
    let app = spawn_app().await;
    let org = setup(&app).await;
    app.upsert_and_wait(
        &org,
        "garage",
        json!([{"identifiers": {"ext_id": "g1"}, "attributes": {"name": "North"}},
               {"identifiers": {"ext_id": "g2"}, "attributes": {"name": "South"}}]),
    )
    .await;
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([
                // links to a vehicle that comes later in the same batch
                {"identifiers": {"ext_id": "v1"}, "attributes": {"name": "One"},
                 "associations": [link("garage", &["g1", "g2"]), link("vehicle", &["v2"])]},
                {"identifiers": {"ext_id": "v2"}, "attributes": {"name": "Two"},
                 "associations": [link("garage", &["g1"])]}
            ]),
        )
        .await;
    assert_eq!(p["status"], "completed");
    assert_eq!(
        p["info"]["associations"],
        json!({"linked": 4, "unlinked": 0, "failed": 0})
    );
    assert_eq!(p["info"]["records"]["failed"], 0);

    let (s, v) = associated(&app, &org, "garage", "ext_id=g1").await;
    assert_eq!(s, 200, "{v}");
    let mut from_g1 = linked_ext_ids(&v);
    from_g1.sort();
    assert_eq!(from_g1, vec!["v1", "v2"]);
    assert_eq!(v["items"][0]["type"], "vehicle");
    assert_eq!(v["has_more"], false);
    let item = &v["items"][0]["object"];
    assert!(
        item["id"].is_i64() && item["created_at"].is_string() && item["updated_at"].is_string()
    );
    assert!(item["attributes"]["name"].is_string());

    let (_, v) = associated(&app, &org, "vehicle", "ext_id=v2").await;
    let mut from_v2 = linked_ext_ids(&v);
    from_v2.sort();
    assert_eq!(
        from_v2,
        vec!["g1", "v1"],
        "the self-association shows on v2 too"
    );
    let (_, v) = associated(&app, &org, "vehicle", "ext_id=v1&type=garage").await;
    let mut garages = linked_ext_ids(&v);
    garages.sort();
    assert_eq!(garages, vec!["g1", "g2"]);

    let list: Value = app
        .get(
            &org.key,
            "/v3/objects/garage/records?limit=10&page_num=1&association=true",
        )
        .await
        .json()
        .await
        .unwrap();
    let g1 = list["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["identifiers"]["ext_id"] == "g1")
        .unwrap();
    assert_eq!(g1["associations"][0]["object_type"], "vehicle");
    assert_eq!(
        g1["associations"][0]["records"].as_array().unwrap().len(),
        2
    );
    assert!(g1["associations"][0]["records"][0]["identifiers"]["id"].is_i64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_links_are_reported_and_the_rest_applied() {
    let app = spawn_app().await;
    let org = setup(&app).await;
    app.upsert_and_wait(&org, "garage", json!([{"identifiers": {"ext_id": "g1"}}]))
        .await;
    app.upsert_and_wait(&org, "owner", json!([{"identifiers": {"ext_id": "o1"}}]))
        .await;
    let id = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "v1"}, "attributes": {"name": "kept"},
                 "associations": [link("owner", &["o1"]), link("garage", &["g1", "nope"])]},
                {"identifiers": {"ext_id": "v2"}, "attributes": {"price": "bad"},
                 "associations": [link("garage", &["g1"])]},
                {"identifiers": {"ext_id": "v3"},
                 "associations": [{"object_type": "garage", "records": [{"identifiers": {"id": 999999}}]}]}
            ]),
        )
        .await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["status"], "completed");
    // A record whose links fail keeps its attributes: it counts as created.
    assert_eq!(p["info"]["records"]["created"], 2);
    assert_eq!(p["info"]["records"]["failed"], 1);
    assert_eq!(
        p["info"]["associations"],
        json!({"linked": 1, "unlinked": 0, "failed": 3})
    );
    let errors = app.process_errors(&org, id).await;
    let summary: Vec<(i64, String)> = errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_i64().unwrap(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, "association_not_defined".into()),
            (0, "associated_record_not_found".into()),
            (1, "invalid_attribute_value".into()),
            (2, "associated_record_not_found".into()),
        ]
    );
    assert!(
        errors["errors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("'nope'")
    );
    assert_eq!(errors["errors"][0]["identifiers"], json!({"ext_id": "v1"}));
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(stored["v1"]["attributes"]["name"], "kept");
    let (_, v) = associated(&app, &org, "garage", "ext_id=g1").await;
    assert_eq!(
        linked_ext_ids(&v),
        vec!["v1"],
        "the rejected v2 links nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_and_unlink_are_idempotent_and_symmetric() {
    let app = spawn_app().await;
    let org = setup(&app).await;
    app.upsert_and_wait(&org, "garage", json!([{"identifiers": {"ext_id": "g1"}}]))
        .await;
    let v1 = |assoc: Value| json!([{"identifiers": {"ext_id": "v1"}, "associations": [assoc]}]);
    let p = app
        .upsert_and_wait(&org, "vehicle", v1(link("garage", &["g1"])))
        .await;
    assert_eq!(p["info"]["associations"]["linked"], 1);
    let p = app
        .upsert_and_wait(&org, "vehicle", v1(link("garage", &["g1"])))
        .await;
    assert_eq!(
        p["info"]["associations"],
        json!({"linked": 0, "unlinked": 0, "failed": 0})
    );
    // Unlink from the other side.
    let p = app
        .upsert_and_wait(
            &org,
            "garage",
            json!([{"identifiers": {"ext_id": "g1"}, "associations": [unlink("vehicle", &["v1"])]}]),
        )
        .await;
    assert_eq!(p["info"]["associations"]["unlinked"], 1);
    let (_, v) = associated(&app, &org, "vehicle", "ext_id=v1").await;
    assert!(linked_ext_ids(&v).is_empty());
    let p = app
        .upsert_and_wait(&org, "vehicle", v1(unlink("garage", &["g1"])))
        .await;
    assert_eq!(
        p["info"]["associations"],
        json!({"linked": 0, "unlinked": 0, "failed": 0})
    );
    assert_eq!(p["info"]["records"]["failed"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_across_batches() {
    let app = spawn_app().await;
    let org = setup(&app).await;
    let garages: Vec<String> = (0..12).map(|i| format!("g{i}")).collect();
    let records: Vec<Value> = garages
        .iter()
        .map(|g| json!({"identifiers": {"ext_id": g}}))
        .collect();
    app.upsert_and_wait(&org, "garage", json!(records)).await;
    let names: Vec<&str> = garages.iter().map(String::as_str).collect();
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "v1"}, "associations": [link("garage", &names[..8])]}]),
        )
        .await;
    assert_eq!(p["info"]["associations"]["linked"], 8);
    let id = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "v1"}, "associations": [link("garage", &names[8..12])]}]),
        )
        .await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(
        p["info"]["associations"],
        json!({"linked": 2, "unlinked": 0, "failed": 2})
    );
    let errors = app.process_errors(&org, id).await;
    assert_eq!(errors["errors"][0]["code"], "too_many_associations");
    let (_, v) = associated(&app, &org, "vehicle", "ext_id=v1").await;
    assert_eq!(linked_ext_ids(&v).len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_under_concurrent_workers() {
    let app = spawn_app_with(2, |s| s.worker.prefetch = 4).await;
    let org = setup(&app).await;
    app.upsert_and_wait(&org, "garage", json!([{"identifiers": {"ext_id": "busy"}}]))
        .await;
    let mut ids = Vec::new();
    for i in 0..16 {
        ids.push(
            app.upsert_accepted(
                &org,
                "vehicle",
                json!([{"identifiers": {"ext_id": format!("v{i}")}, "associations": [link("garage", &["busy"])]}]),
            )
            .await,
        );
    }
    let (mut linked, mut refused) = (0, 0);
    for id in ids {
        let p = app.wait_for_process(&org, id).await;
        assert_eq!(p["status"], "completed", "{p}");
        linked += p["info"]["associations"]["linked"].as_i64().unwrap();
        refused += p["info"]["associations"]["failed"].as_i64().unwrap();
    }
    assert_eq!((linked, refused), (10, 6));
    let client = app.pool.get().await.unwrap();
    let held: i64 = client
        .query_one("select count(*) from record_links l join records r on r.org_id = l.org_id and r.id = l.src_id where r.ext_id = 'busy'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn associated_records_pages_and_checks_its_parameters() {
    let app = spawn_app_with(1, |s| s.worker.max_links_per_type = 50).await;
    let org = setup(&app).await;
    let garages: Vec<String> = (0..25).map(|i| format!("g{i:02}")).collect();
    let names: Vec<&str> = garages.iter().map(String::as_str).collect();
    let records: Vec<Value> = garages
        .iter()
        .map(|g| json!({"identifiers": {"ext_id": g}}))
        .collect();
    app.upsert_and_wait(&org, "garage", json!(records)).await;
    // Link in three batches so that link ages differ.
    for chunk in names.chunks(10) {
        app.upsert_and_wait(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "v1"}, "associations": [link("garage", chunk)]}]),
        )
        .await;
    }
    let (s, first) = associated(&app, &org, "vehicle", "ext_id=v1").await;
    assert_eq!(s, 200);
    assert_eq!(first["items"].as_array().unwrap().len(), 20);
    assert_eq!(first["has_more"], true);
    assert_eq!(
        first["offset"], 0,
        "the offset that was requested, as Brevo answers"
    );
    let newest = linked_ext_ids(&first);
    assert!(
        newest[..5].iter().all(|g| g.as_str() >= "g20"),
        "newest link first: {newest:?}"
    );
    let (_, second) = associated(&app, &org, "vehicle", "ext_id=v1&offset=20").await;
    assert_eq!(second["items"].as_array().unwrap().len(), 5);
    assert_eq!(second["has_more"], false);
    assert_eq!(second["offset"], 20);
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    let v1 = stored["v1"]["identifiers"]["id"].as_i64().unwrap();
    let (s, by_id) = associated(&app, &org, "vehicle", &format!("id={v1}&type=garage")).await;
    assert_eq!(s, 200);
    assert_eq!(by_id["items"], first["items"]);

    let list: Value = app
        .get(
            &org.key,
            "/v3/objects/vehicle/records?limit=10&page_num=1&association=true",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["records"][0]["associations"][0]["records"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    for (query, status) in [
        ("", 400),
        ("id=1&ext_id=v1", 400),
        ("id=abc", 400),
        ("ext_id=v1&type=owner", 400),
        ("ext_id=v1&type=Bad", 400),
        (
            "ext_id=v1&type=garage&type=garage&type=garage&type=garage&type=garage&type=garage",
            400,
        ),
        ("ext_id=v1&offset=-1", 400),
        ("ext_id=nobody", 404),
    ] {
        let (s, v) = associated(&app, &org, "vehicle", query).await;
        assert_eq!(s, status, "{query}: {v}");
    }
    let (s, v) = associated(&app, &org, "unknown", "ext_id=v1").await;
    assert_eq!(s, 404, "{v}");
}
