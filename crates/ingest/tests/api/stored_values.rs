//! What is stored is what is returned: a number is accepted only if it
//! reads back with the value sent, dates keep to years 0001–9999 without
//! leap seconds, and a key that is not valid Unicode is an undefined key.

use objectsync_testkit::{Org, TestApp, spawn_app};
use serde_json::{Value, json};

/// Posts `records` (JSON text, so that literals go as written) and waits
/// for the process to end.
async fn upsert_text(app: &TestApp, org: &Org, records: &str) -> (i64, Value) {
    let body = format!(r#"{{"records":[{records}]}}"#);
    let resp = app
        .post_bytes(&org.key, "/v3/objects/vehicle/batch/upsert", body.into())
        .await;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(status, 202, "{answer}");
    let id = answer["processId"].as_i64().unwrap();
    (id, app.wait_for_process(org, id).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_come_back_as_sent_or_reject_their_record() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let kept = [
        ("0.1", json!(0.1)),
        ("1.5", json!(1.5)),
        ("1e20", json!(1e20)),
        ("-9223372036854775808", json!(i64::MIN)),
        ("18446744073709551615", json!(u64::MAX)),
        // Read back wrong (or, for the largest double, not at all) by a
        // JSON reader that does not round floats correctly.
        ("-3.254957696128062e-208", json!(-3.254957696128062e-208)),
        ("1.7976931348623157e308", json!(f64::MAX)),
    ];
    let refused = [
        ("1e-400", "0.0"),
        ("123456789012345678901234567890", "1.2345678901234568e+29"),
        ("-9223372036854775809", "-9.223372036854776e+18"),
    ];
    let mut records: Vec<String> = kept
        .iter()
        .enumerate()
        .map(|(i, (literal, _))| {
            format!(r#"{{"identifiers":{{"ext_id":"ok{i}"}},"attributes":{{"price":{literal}}}}}"#)
        })
        .collect();
    records.extend(refused.iter().enumerate().map(|(i, (literal, _))| {
        format!(r#"{{"identifiers":{{"ext_id":"bad{i}"}},"attributes":{{"name":"x","price":{literal}}}}}"#)
    }));
    let (id, p) = upsert_text(&app, &org, &records.join(",")).await;
    assert_eq!(p["status"], "completed");
    assert_eq!(p["info"]["records"]["failed"], refused.len());

    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(stored.len(), kept.len(), "refused records are not stored");
    for (i, (literal, value)) in kept.iter().enumerate() {
        assert_eq!(
            &stored[&format!("ok{i}")]["attributes"]["price"],
            value,
            "{literal}"
        );
    }
    let errors = app.process_errors(&org, id).await;
    for (e, (literal, back)) in errors["errors"].as_array().unwrap().iter().zip(refused) {
        assert_eq!(e["code"], "invalid_attribute_value");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("'price'") && message.contains(&format!("returned as {back}")),
            "{literal}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_keep_to_years_0001_to_9999_without_leap_seconds() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let (id, p) = upsert_text(
        &app,
        &org,
        r#"{"identifiers":{"ext_id":"first"},"attributes":{"registered":"0001-01-01"}},
           {"identifiers":{"ext_id":"last"},"attributes":{"registered":"9999-12-31T23:59:59Z"}},
           {"identifiers":{"ext_id":"y0"},"attributes":{"registered":"0000-01-01"}},
           {"identifiers":{"ext_id":"leap"},"attributes":{"registered":"2016-12-31T23:59:60Z"}},
           {"identifiers":{"ext_id":"y10000"},"attributes":{"registered":"9999-12-31T23:30:00-01:00"}}"#,
    )
    .await;
    assert_eq!(p["info"]["records"]["failed"], 3, "{p}");
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(stored["first"]["attributes"]["registered"], "0001-01-01");
    assert_eq!(
        stored["last"]["attributes"]["registered"],
        "9999-12-31T23:59:59Z"
    );
    let errors = app.process_errors(&org, id).await;
    let messages: Vec<&str> = errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(messages[0].contains("0001 to 9999"), "{messages:?}");
    assert!(messages[1].contains("leap second"), "{messages:?}");
    assert!(messages[2].contains("0001 to 9999"), "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_unicode_is_ignored_and_the_rest_applies() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    let (_, p) = upsert_text(
        &app,
        &org,
        r#"{"identifiers":{"ext_id":"a"},"attributes":{"na\ud800me":"ignored","name":"kept","price":2}}"#,
    )
    .await;
    assert_eq!(p["info"]["records"]["failed"], 0, "{p}");
    let stored = app.records_by_ext_id(&org, "vehicle").await;
    assert_eq!(
        stored["a"]["attributes"],
        json!({"name": "kept", "price": 2})
    );
}
