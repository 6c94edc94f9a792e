//! Requests held to the OpenAPI document, as responses are: a body the
//! document's request schema allows is never refused with 400, and one it
//! refuses always is. Each case is first checked against the schema (so the
//! test says what the document says), then sent.

use objectsync_testkit::{
    ADMIN_TOKEN, Org, TestApp, request_schema_verdict, spawn_app_with, vehicle_definition,
};
use serde_json::{Value, json};

/// Sends `body` to `method path` (admin token or the org's key) and checks
/// that the server agrees with the document about it.
async fn agrees(
    app: &TestApp,
    org: &Org,
    (method, template, path): (&str, &str, &str),
    body: &Value,
    allowed: bool,
) {
    let verdict = request_schema_verdict(method, template, body);
    assert_eq!(
        verdict.is_ok(),
        allowed,
        "the document on {body}: {verdict:?}"
    );
    let req = match method {
        "put" => app.client.put(app.url(path)),
        _ => app.client.post(app.url(path)),
    };
    let req = if path.starts_with("/admin") {
        req.header("admin-token", ADMIN_TOKEN)
    } else {
        req.header("api-key", org.key.as_str())
    };
    let resp = req.json(body).send().await.expect("request");
    let status = resp.status().as_u16();
    let answer: Value = resp.json().await.unwrap_or_default();
    if allowed {
        assert_ne!(status, 400, "{method} {path} {body}: {answer}");
    } else {
        assert_eq!(status, 400, "{method} {path} {body}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bodies_are_read_as_the_document_says() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.create_org(true).await;
    let orgs = ("post", "/admin/organizations", "/admin/organizations");
    let limits_path = format!("/admin/organizations/{}/limits", org.id);
    let limits = (
        "put",
        "/admin/organizations/{org_id}/limits",
        limits_path.as_str(),
    );
    let object_path = format!("/admin/organizations/{}/objects/vehicle", org.id);
    let object = (
        "put",
        "/admin/organizations/{org_id}/objects/{object_type}",
        object_path.as_str(),
    );
    let fail_path = format!("/admin/organizations/{}/processes/999999/fail", org.id);
    let fail = (
        "post",
        "/admin/organizations/{org_id}/processes/{process_id}/fail",
        fail_path.as_str(),
    );
    let text = json!({"key": "name", "label": "Name", "type": "text"});
    let cases = [
        (orgs, json!({"name": "Acme"}), true),
        (
            orgs,
            json!({"name": "Acme", "custom_objects_enabled": false}),
            true,
        ),
        (orgs, json!({"name": "Acme", "plan": "gold"}), false),
        (orgs, json!({"custom_objects_enabled": true}), false),
        (orgs, json!({"name": 5}), false),
        (limits, json!({}), true),
        (limits, json!({"max_open_processes": 392_190.0}), true),
        (
            limits,
            json!({"max_open_processes": 5, "writes_per_second": 0.5}),
            true,
        ),
        (limits, json!({"max_open_processes": 2.5}), false),
        (limits, json!({"max_open_processes": -1}), false),
        (limits, json!({"burst": 3}), false),
        (object, vehicle_definition(), true),
        (
            object,
            json!({"label": "V", "attributes": [text], "associations": []}),
            true,
        ),
        (
            object,
            json!({"label": "V", "attributes": [text], "icon": "car"}),
            false,
        ),
        (
            object,
            json!({"label": "V", "attributes": [["name", "Name", "text"]]}),
            false,
        ),
        (orgs, json!(["Acme", true]), false),
        (
            object,
            json!({"label": "V", "attributes": [{"key": "name", "label": "N", "type": "text", "required": true}]}),
            false,
        ),
        (
            object,
            json!({"label": "V", "attributes": [{"key": "", "label": "N", "type": "text"}]}),
            false,
        ),
        (
            object,
            json!({"label": "V", "attributes": [{"key": "Name", "label": "N", "type": "text"}]}),
            false,
        ),
        (
            object,
            json!({"label": "V", "attributes": [text], "associations": ["Garage"]}),
            false,
        ),
        (fail, json!({"reason": "stuck"}), true),
        (fail, json!({"reason": "stuck", "operator": "ada"}), true),
        (fail, json!({"reason": "stuck", "why": "no"}), false),
        (fail, json!({}), false),
    ];
    for (route, body, allowed) in &cases {
        agrees(&app, &org, *route, body, *allowed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_refusals_name_the_field() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.create_org(true).await;
    let limits = format!("/admin/organizations/{}/limits", org.id);
    let object = format!("/admin/organizations/{}/objects/vehicle", org.id);
    let cases = [
        (
            "/admin/organizations",
            r#"{"name": "A", "plan": "gold"}"#,
            "plan",
        ),
        (
            "/admin/organizations",
            r#"{"name": "A", "name": "B"}"#,
            "name",
        ),
        (
            &limits,
            r#"{"reads_burst": 5, "reads_burst": 6}"#,
            "reads_burst",
        ),
        (
            &limits,
            r#"{"max_open_processes": 2.5}"#,
            "max_open_processes",
        ),
        (
            &object,
            r#"{"label": "V", "attributes": [{"key": "n", "label": "N", "type": "text", "type": "url"}]}"#,
            "attributes[0].type",
        ),
        (
            &object,
            r#"{"label": "V", "attributes": [{"key": "n", "label": "N", "type": "text", "hint": 1}]}"#,
            "attributes[0].hint",
        ),
    ];
    for (path, body, field) in cases {
        let method = if path.ends_with("organizations") {
            reqwest::Method::POST
        } else {
            reqwest::Method::PUT
        };
        let resp = app
            .client
            .request(method, app.url(path))
            .header("admin-token", ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let answer: Value = resp.json().await.unwrap();
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{field}: {answer}"
        );
    }
    // `392190.0` is the integer the document says it is.
    let resp = app
        .admin_put(&limits, &json!({"max_open_processes": 392_190.0}))
        .await;
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["own"]["max_open_processes"], 392_190, "{answer}");
    // A body over 1 MiB: the contract client fails the test unless 413 is
    // documented for the operation.
    let resp = app
        .client
        .put(app.url(&limits))
        .header("admin-token", ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(format!(r#"{{"x": "{}"}}"#, "a".repeat(1_100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_bodies_are_read_as_the_document_says() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles_and_garages().await;
    let upsert = (
        "post",
        "/v3/objects/{object_type}/batch/upsert",
        "/v3/objects/vehicle/batch/upsert",
    );
    let delete = (
        "post",
        "/v3/objects/{object_type}/batch/delete",
        "/v3/objects/vehicle/batch/delete",
    );
    let record = |r: Value| json!({"records": [r]});
    let link = |a: Value| record(json!({"identifiers": {"ext_id": "v1"}, "associations": [a]}));
    let many: serde_json::Map<String, Value> =
        (0..501).map(|i| (format!("k{i}"), json!(1))).collect();
    let targets = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"identifiers": {"ext_id": format!("g{i}")}}))
            .collect()
    };
    let cases = [
        (
            upsert,
            record(json!({"identifiers": {"ext_id": "v1"}, "attributes": {"name": "A"}})),
            true,
        ),
        (upsert, record(json!({"identifiers": {"id": 7.0}})), true),
        (
            upsert,
            record(json!({"identifiers": null, "attributes": null, "associations": null})),
            true,
        ),
        (
            upsert,
            record(json!({"identifiers": {"ext_id": "v1"}, "note": "ignored"})),
            true,
        ),
        (
            upsert,
            link(json!({"object_type": "garage", "records": targets(10)})),
            true,
        ),
        (
            upsert,
            link(json!({"object_type": "garage", "action": "unlink", "records": targets(1)})),
            true,
        ),
        (upsert, json!({"records": []}), false),
        (upsert, json!({"rows": []}), false),
        (upsert, record(json!({"identifiers": {"id": 0}})), false),
        (upsert, record(json!({"identifiers": {"id": 1.5}})), false),
        (
            upsert,
            record(json!({"identifiers": {"email": "a@b.c"}})),
            false,
        ),
        (
            upsert,
            record(json!({"identifiers": {"ext_id": ""}})),
            false,
        ),
        (
            upsert,
            record(json!({"attributes": Value::Object(many)})),
            false,
        ),
        (
            upsert,
            link(json!({"object_type": "garage", "records": targets(11)})),
            false,
        ),
        (
            upsert,
            link(json!({"object_type": "garage", "action": "merge", "records": []})),
            false,
        ),
        (
            upsert,
            link(json!({"object_type": "Garage", "records": []})),
            false,
        ),
        (
            upsert,
            link(json!({"object_type": "garage", "records": [], "extra": 1})),
            true,
        ),
        (
            upsert,
            link(json!({"object_type": "garage", "records": null})),
            false,
        ),
        (
            upsert,
            link(json!({"object_type": "garage", "records": [{"identifiers": {"id": 1}, "x": 1}]})),
            true,
        ),
        (
            upsert,
            link(json!({"object_type": "garage", "records": [{"identifiers": {"id": 1, "x": 1}}]})),
            false,
        ),
        (
            upsert,
            link(
                json!({"object_type": "garage", "records": [{"identifiers": {"id": 1, "ext_id": "g"}}]}),
            ),
            false,
        ),
        (delete, json!({"identifiers": {"ids": [1, 2.0]}}), true),
        (delete, json!({"identifiers": {"ext_ids": ["v1"]}}), true),
        (
            delete,
            json!({"identifiers": {"ids": [1], "ext_ids": ["v1"]}}),
            false,
        ),
        (delete, json!({"identifiers": {"ids": []}}), false),
        (delete, json!({"identifiers": {"ids": ["1"]}}), false),
        (delete, json!({"ids": [1]}), false),
    ];
    for (route, body, allowed) in &cases {
        agrees(&app, &org, *route, body, *allowed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_carry_their_pattern_in_the_document() {
    let doc = serde_json::to_value(objectsync_ingest::openapi::document()).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["AttributeKey"]["pattern"], "^[a-z][a-z0-9_]{0,63}$");
    assert_eq!(
        schemas["ObjectTypeName"]["pattern"],
        "^[a-z][a-z0-9_]{0,31}$"
    );
    let params = &doc["paths"]["/v3/objects/{object_type}/associated-records"]["get"]["parameters"];
    let types = params
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "type")
        .unwrap();
    assert_eq!(
        types["schema"]["items"]["$ref"], "#/components/schemas/ObjectTypeName",
        "{types}"
    );

    // And the server refuses what the pattern refuses: an empty `type=`.
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles_and_garages().await;
    let resp = app
        .get(
            &org.key,
            "/v3/objects/vehicle/associated-records?ext_id=v1&type=",
        )
        .await;
    assert_eq!(resp.status(), 400);
}
