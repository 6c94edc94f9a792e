//! What the worker does with accepted batches (SPEC §4.1, background part).

use objectsync_testkit::spawn_app;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_from_queued_to_completed_and_lands() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "v1"}, "attributes": {"name": "Zoe", "price": 21000}},
                {"identifiers": {"ext_id": "v2"}, "attributes": {"name": "Model 3", "electric": true}},
                {"attributes": {"name": "anonymous"}}
            ]),
        )
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    assert_eq!(p["name"], "OBJECT_RECORDS_UPSERT");
    assert_eq!(p["object_type"], "vehicle");
    assert_eq!(
        p["info"]["records"],
        json!({"total": 3, "processed": 3, "created": 3, "updated": 0, "deleted": 0, "failed": 0})
    );
    assert!(p["started_at"].is_string() && p["completed_at"].is_string());
    let records = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(records.len(), 3);
    assert_eq!(
        records["v1"]["attributes"],
        json!({"name": "Zoe", "price": 21000})
    );
    assert!(records["v1"]["identifiers"]["id"].as_i64().unwrap() > 0);
    let anon: Vec<&Value> = records
        .values()
        .filter(|r| r["identifiers"]["ext_id"].is_null())
        .collect();
    assert_eq!(anon.len(), 1);
    assert!(anon[0]["identifiers"]["id"].as_i64().unwrap() > 0);
}

fn counts(p: &Value) -> (i64, i64, i64, i64) {
    let r = &p["info"]["records"];
    (
        r["processed"].as_i64().unwrap(),
        r["created"].as_i64().unwrap(),
        r["updated"].as_i64().unwrap(),
        r["failed"].as_i64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_merge_unknown_keys_are_ignored_and_null_clears() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    app.upsert_and_wait(
        &org,
        "vehicle",
        json!([{"identifiers": {"ext_id": "v1"},
                "attributes": {"name": "Zoe", "price": 1, "electric": true, "mileage": 5}}]),
    )
    .await;
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "v1"},
                    "attributes": {"price": 2, "color": "red", "electric": null, "nope": "x"}}]),
        )
        .await;
    assert_eq!(counts(&p), (1, 0, 1, 0));
    let records = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(
        records["v1"]["attributes"],
        json!({"name": "Zoe", "price": 2, "color": "red"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_type_accepts_its_values_and_rejects_others() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let good = [
        ("name", json!("Zoe")),
        ("price", json!(12.5)),
        ("electric", json!(false)),
        ("registered", json!("2024-06-15")),
        ("website", json!("https://example.com/zoe")),
        ("color", json!("blue")),
        ("features", json!(["gps", "abs"])),
    ];
    let bad = [
        ("name", json!(12)),
        ("price", json!("12")),
        ("electric", json!(1)),
        ("registered", json!("2024-06-15T10:00:00")),
        ("registered", json!("15/06/2024")),
        ("website", json!("ftp://example.com")),
        ("website", json!("not a url")),
        ("color", json!("Blue")),
        ("features", json!(["gps", "gps"])),
        ("features", json!("gps")),
        ("name", json!("x".repeat(10_001))),
    ];
    let mut records = Vec::new();
    for (i, (key, value)) in good.iter().enumerate() {
        records.push(
            json!({"identifiers": {"ext_id": format!("good{i}")}, "attributes": {*key: value}}),
        );
    }
    for (i, (key, value)) in bad.iter().enumerate() {
        records.push(
            json!({"identifiers": {"ext_id": format!("bad{i}")}, "attributes": {*key: value}}),
        );
    }
    let id = app.upsert_accepted(&org, "vehicle", json!(records)).await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["status"], "completed");
    assert_eq!(counts(&p), (18, 7, 0, 11));

    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(
        stored.len(),
        good.len(),
        "rejected records must not be stored"
    );
    for (i, (key, value)) in good.iter().enumerate() {
        assert_eq!(&stored[&format!("good{i}")]["attributes"][*key], value);
    }
    let errors = app.process_errors(&org, id).await;
    assert_eq!(errors["count"], 11);
    for (i, e) in errors["errors"].as_array().unwrap().iter().enumerate() {
        let (key, _) = &bad[i];
        assert_eq!(e["index"], good.len() + i);
        assert_eq!(e["identifiers"], json!({"ext_id": format!("bad{i}")}));
        assert_eq!(e["code"], "invalid_attribute_value");
        assert!(
            e["message"].as_str().unwrap().contains(&format!("'{key}'")),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_read_back_as_the_contract_says() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    app.upsert_and_wait(
        &org,
        "vehicle",
        json!([
            {"identifiers": {"ext_id": "a"}, "attributes": {
                "registered": "2024-06-15T10:30:00+02:00", "features": ["ac", "gps", "abs"]}},
            {"identifiers": {"ext_id": "b"}, "attributes": {"registered": "2024-06-15"}}
        ]),
    )
    .await;
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(
        stored["a"]["attributes"]["registered"],
        "2024-06-15T08:30:00Z"
    );
    assert_eq!(
        stored["a"]["attributes"]["features"],
        json!(["ac", "gps", "abs"])
    );
    assert_eq!(stored["b"]["attributes"]["registered"], "2024-06-15");
    assert!(stored["a"]["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_update_leaves_the_stored_record_whole() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    app.upsert_and_wait(
        &org,
        "vehicle",
        json!([{"identifiers": {"ext_id": "v1"}, "attributes": {"name": "Zoe", "price": 1}}]),
    )
    .await;
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([{"identifiers": {"ext_id": "v1"}, "attributes": {"name": "Renamed", "price": "2"}}]),
        )
        .await;
    assert_eq!(counts(&p), (1, 0, 0, 1));
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(
        stored["v1"]["attributes"],
        json!({"name": "Zoe", "price": 1})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_identifier_twice_applies_in_order() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "a"}, "attributes": {"name": "first", "price": 1}},
                {"identifiers": {"ext_id": "a"}, "attributes": {"name": "second", "color": "red"}},
                {"identifiers": {"ext_id": "b"}, "attributes": {"name": "b"}},
                {"identifiers": {"ext_id": "a"}, "attributes": {"price": null}}
            ]),
        )
        .await;
    assert_eq!(counts(&p), (4, 2, 2, 0));
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(
        stored["a"]["attributes"],
        json!({"name": "second", "color": "red"})
    );

    // Twice by id in a later batch, with an ext_id record in between.
    let id = stored["a"]["identifiers"]["id"].as_i64().unwrap();
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"id": id}, "attributes": {"price": 10}},
                {"identifiers": {"ext_id": "a"}, "attributes": {"price": 20}},
                {"identifiers": {"id": id, "ext_id": "a"}, "attributes": {"name": "third"}}
            ]),
        )
        .await;
    assert_eq!(counts(&p), (3, 0, 3, 0));
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(
        stored["a"]["attributes"],
        json!({"name": "third", "color": "red", "price": 20})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_update_only_and_generated_ids_are_distinct() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    app.upsert_and_wait(
        &org,
        "vehicle",
        json!([{"attributes": {"name": "one"}}, {"attributes": {"name": "two"}}]),
    )
    .await;
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    let ids: Vec<i64> = stored
        .values()
        .map(|r| r["identifiers"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);

    let unknown = ids.iter().max().unwrap() + 1000;
    let id = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"id": unknown}, "attributes": {"name": "ghost"}},
                {"identifiers": {"id": ids[0], "ext_id": "named"}, "attributes": {"price": 5}}
            ]),
        )
        .await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(counts(&p), (2, 0, 1, 1));
    let errors = app.process_errors(&org, id).await;
    assert_eq!(errors["errors"][0]["index"], 0);
    assert_eq!(errors["errors"][0]["code"], "record_not_found");
    assert_eq!(errors["errors"][0]["identifiers"], json!({"id": unknown}));
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(stored.len(), 2, "an unknown id never creates a record");
    assert_eq!(stored["named"]["identifiers"]["id"], ids[0]);
    assert_eq!(stored["named"]["attributes"]["price"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_reject_the_record_not_the_batch() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let id = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "ok"}, "attributes": {"name": "fine"}},
                {"identifiers": {"ext_id": "nul"}, "attributes": {"name": "bad\u{0}name"}},
                {"identifiers": {"ext_id": "nul2"}, "attributes": {"color": "red\u{0}"}}
            ]),
        )
        .await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(p["status"], "completed");
    assert_eq!(counts(&p), (3, 1, 0, 2));
    let errors = app.process_errors(&org, id).await;
    for e in errors["errors"].as_array().unwrap() {
        assert_eq!(e["code"], "invalid_attribute_value");
        assert!(e["message"].as_str().unwrap().contains("NUL"), "{e}");
    }
    // An ext_id with NUL cannot even be queued.
    let resp = app
        .upsert(
            &org.key,
            "vehicle",
            &json!({"records": [{"identifiers": {"ext_id": "a\u{0}"}}]}),
        )
        .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_records_in_one_batch() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let records: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"identifiers": {"ext_id": format!("v{i:04}")},
                   "attributes": {"name": format!("vehicle {i}"), "price": i, "color": "red",
                                  "features": ["gps"], "registered": "2024-01-01"}})
        })
        .collect();
    let p = app.upsert_and_wait(&org, "vehicle", json!(records)).await;
    assert_eq!(counts(&p), (1000, 1000, 0, 0));
    let p = app.upsert_and_wait(&org, "vehicle", json!(records)).await;
    assert_eq!(counts(&p), (1000, 0, 1000, 0));
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(stored.len(), 1000);
    assert_eq!(stored["v0999"]["attributes"]["price"], 999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_naming_two_records_are_a_conflict() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    app.upsert_and_wait(
        &org,
        "vehicle",
        json!([{"identifiers": {"ext_id": "a"}}, {"identifiers": {"ext_id": "b"}}]),
    )
    .await;
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    let a = stored["a"]["identifiers"]["id"].as_i64().unwrap();
    let id = app
        .upsert_accepted(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"id": a, "ext_id": "b"}, "attributes": {"name": "x"}},
                {"identifiers": {"id": a, "ext_id": "a"}, "attributes": {"name": "ok"}}
            ]),
        )
        .await;
    let p = app.wait_for_process(&org, id).await;
    assert_eq!(counts(&p), (2, 0, 1, 1));
    let errors = app.process_errors(&org, id).await;
    assert_eq!(errors["errors"][0]["code"], "identifier_conflict");
    assert_eq!(
        errors["errors"][0]["identifiers"],
        json!({"id": a, "ext_id": "b"})
    );
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(stored["a"]["attributes"], json!({"name": "ok"}));
    assert_eq!(stored["b"]["attributes"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_records_get_ids_in_request_order() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    // Ext_ids out of alphabetical order, and a record without identifiers
    // between them.
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "zz"}, "attributes": {"name": "first"}},
                {"attributes": {"name": "second"}},
                {"identifiers": {"ext_id": "aa"}, "attributes": {"name": "third"}}
            ]),
        )
        .await;
    assert_eq!(p["info"]["records"]["created"], 3);
    let p = app
        .upsert_and_wait(
            &org,
            "vehicle",
            json!([
                {"identifiers": {"ext_id": "yy"}, "attributes": {"name": "fourth"}},
                {"identifiers": {"ext_id": "bb"}, "attributes": {"name": "fifth"}}
            ]),
        )
        .await;
    assert_eq!(p["info"]["records"]["created"], 2);
    let resp = app
        .get(
            &org.key,
            "/v3/objects/vehicle/records?limit=10&page_num=1&sort=asc",
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    let names: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["attributes"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second", "third", "fourth", "fifth"]);
}
