use super::*;
use crate::error::ApiCode;
use crate::limits::{MAX_ASSOCIATION_ENTRIES, MAX_ATTRIBUTES, MAX_RECORDS_PER_BATCH};
use serde_json::{Map, json};

fn decode(text: &str) -> Result<Upsert<'_>, RequestError> {
    Upsert::decode(text.as_bytes())
}

fn code(v: Value) -> (ApiCode, String) {
    let text = v.to_string();
    let e = decode(&text).unwrap_err();
    (e.code, e.message)
}

fn ok(v: Value) -> usize {
    let text = v.to_string();
    decode(&text)
        .unwrap_or_else(|e| panic!("{v} refused: {e}"))
        .records
        .len()
}

#[test]
fn accepts_a_typical_batch() {
    let text = json!({"records": [
        {"identifiers": {"ext_id": "v1"}, "attributes": {"name": "A", "price": 1.5}},
        {"identifiers": {"id": 7, "ext_id": "v2"}},
        {"attributes": {"name": "no ids"}},
        {"identifiers": {"ext_id": "v3"}, "associations": [
            {"object_type": "garage", "records": [{"identifiers": {"ext_id": "g1"}}]},
            {"object_type": "garage", "action": "unlink", "records": [{"identifiers": {"id": 3}}]}
        ]}
    ]})
    .to_string();
    let b = decode(&text).unwrap();
    assert_eq!(b.records.len(), 4);
    assert_eq!(b.records[0].attributes[1].0, "price");
    assert_eq!(b.records[0].attributes[1].1.get(), "1.5");
    assert_eq!(b.records[1].identifiers.id, Some(7));
    assert!(b.records[2].identifiers.is_empty());
    assert_eq!(b.records[3].associations[0].action, LinkAction::Link);
    assert_eq!(b.records[3].associations[1].action, LinkAction::Unlink);
}

#[test]
fn body_must_be_an_object_with_records() {
    for body in [
        "not json",
        "[1]",
        r#"[[{"identifiers":{"ext_id":"a"}}]]"#,
        r#"{"rows": []}"#,
        r#"{"records": {}}"#,
        "\"x\"",
        r#"{"records":[{}],"records":[{}]}"#,
    ] {
        let e = decode(body).unwrap_err();
        assert_eq!(e.code, ApiCode::BadRequest, "{body}");
    }
    let e = Upsert::decode(b"{\"records\":[{\"attributes\":{\"a\":\"\xff\"}}]}").unwrap_err();
    assert_eq!(e.code, ApiCode::BadRequest);
    assert!(e.message.contains("UTF-8"), "{e}");
}

#[test]
fn record_count_is_bounded() {
    assert_eq!(code(json!({"records": []})).0, ApiCode::OutOfRange);
    let many: Vec<Value> = (0..=MAX_RECORDS_PER_BATCH).map(|_| json!({})).collect();
    assert_eq!(code(json!({ "records": many })).0, ApiCode::OutOfRange);
    let max: Vec<Value> = (0..MAX_RECORDS_PER_BATCH).map(|_| json!({})).collect();
    assert_eq!(ok(json!({ "records": max })), MAX_RECORDS_PER_BATCH);
}

#[test]
fn per_record_limits_name_the_index() {
    let attrs: Map<String, Value> = (0..=MAX_ATTRIBUTES)
        .map(|i| (format!("a{i}"), json!(1)))
        .collect();
    let (c, m) = code(json!({"records": [{}, {"attributes": attrs}]}));
    assert_eq!(c, ApiCode::OutOfRange);
    assert!(m.contains("records[1]"), "{m}");

    let entries: Vec<Value> = (0..=MAX_ASSOCIATION_ENTRIES)
        .map(|i| json!({"object_type": format!("t{i}"), "records": []}))
        .collect();
    let (c, m) = code(json!({"records": [{"associations": entries}]}));
    assert_eq!(c, ApiCode::OutOfRange);
    assert!(m.contains("records[0]"), "{m}");

    let targets =
        |n: i64| -> Vec<Value> { (1..=n).map(|i| json!({"identifiers": {"id": i}})).collect() };
    let (c, m) = code(json!({"records": [{}, {}, {"associations": [
        {"object_type": "garage", "records": targets(6)},
        {"object_type": "garage", "action": "link", "records": targets(5)}
    ]}]}));
    assert_eq!(c, ApiCode::OutOfRange);
    assert!(m.contains("records[2]"), "{m}");
    assert_eq!(
        ok(json!({"records": [{"associations": [
            {"object_type": "garage", "records": targets(10)},
            {"object_type": "garage", "action": "unlink", "records": targets(10)}
        ]}]})),
        1
    );
}

#[test]
fn identifiers_must_be_well_formed() {
    for bad in [
        json!({"id": 0}),
        json!({"id": -3}),
        json!({"id": 1.5}),
        json!({"id": "12"}),
        json!({"id": 9_223_372_036_854_775_808_u64}),
        json!({"ext_id": ""}),
        json!({"ext_id": 12}),
        json!({"ext_id": "x".repeat(256)}),
        json!({"ext_id": "a\u{0}b"}),
        json!({"email": "a@b.c"}),
        json!("v1"),
        json!([{"ext_id": "v1"}]),
    ] {
        let (c, m) = code(json!({"records": [{}, {"identifiers": bad.clone()}]}));
        assert_eq!(c, ApiCode::InvalidParameter, "{bad}");
        assert!(m.contains("records[1]"), "{bad}: {m}");
    }
    assert_eq!(
        ok(json!({"records": [{"identifiers": {"ext_id": "é".repeat(255)}}]})),
        1
    );
    assert_eq!(ok(json!({"records": [{"identifiers": {}}]})), 1);
    // The document says integer, and 7.0 is one to JSON Schema.
    let body = br#"{"records": [{"identifiers": {"id": 7.0}}, {"identifiers": {"id": 7e0}}]}"#;
    let read = Upsert::decode(body).unwrap();
    assert!(read.records.iter().all(|r| r.identifiers.id == Some(7)));
    assert_eq!(
        ok(json!({"records": [{"identifiers": null, "attributes": null, "associations": null}]})),
        1
    );
}

#[test]
fn hostile_json_in_the_structure_is_a_400_naming_the_record() {
    for body in [
        r#"{"records":[{},{"identifiers":{"ext_id":"a","ext_id":"b"}}]}"#,
        r#"{"records":[{},{"identifiers":{"ext_id":"a\ud800"}}]}"#,
        r#"{"records":[{},{"identifiers":{"id":1e400}}]}"#,
        r#"{"records":[{},{"identifiers":{"ext_id":"a"},"identifiers":{"ext_id":"b"}}]}"#,
        r#"{"records":[{},{"attributes":{"a":1,"a":2}}]}"#,
        r#"{"records":[{},{"identifiers":{"ext_id":"a","\udc00":1}}]}"#,
        r#"{"records":[{},["not","a","record"]]}"#,
        r#"{"records":[{},{"associations":[{"object_type":"g","object_type":"h","records":[]}]}]}"#,
        r#"{"records":[{},{"associations":[{"object_type":"g","records":[{"identifiers":{"id":1},"identifiers":{"id":2}}]}]}]}"#,
        r#"{"records":[{},{"associations":[{"object_type":"g","records":[{"identifiers":{"id":1,"id":2}}]}]}]}"#,
    ] {
        let e = decode(body).unwrap_err();
        assert_eq!(e.code, ApiCode::InvalidParameter, "{body}");
        assert!(e.message.contains("records[1]"), "{body}: {e}");
    }
}

#[test]
fn hostile_attribute_values_are_left_to_the_record() {
    let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let body = format!(
        r#"{{"records":[{{"attributes":{{"a":1e400,"b":"x\ud800y","c":{deep},"d":{{"k":1,"k":2}},"e":"\u0000"}}}}]}}"#
    );
    let b = decode(&body).unwrap();
    let raw: Vec<&str> = b.records[0]
        .attributes
        .iter()
        .map(|(_, v)| v.get())
        .collect();
    assert_eq!(raw[0], "1e400");
    assert_eq!(raw[1], r#""x\ud800y""#);
    assert_eq!(raw[2], deep);
}

#[test]
fn keys_that_are_not_unicode_are_unknown_keys() {
    // No attribute, record member or body member can be named so: ignored
    // unread, and the record's other attributes are kept.
    let body = r#"{"\ud800":1,"records":[{"attributes":{"na\ud800me":"a","\udc00":[1e400],"name":"kept"},"x\udbff":{}}]}"#;
    let b = decode(body).unwrap();
    let attrs: Vec<(&str, &str)> = b.records[0]
        .attributes
        .iter()
        .map(|(k, v)| (k.as_ref(), v.get()))
        .collect();
    assert_eq!(attrs, [("name", r#""kept""#)]);
    assert!(Upsert::decode_carefully(body).is_ok());
    // They still count toward the attribute limit.
    let mut attrs: Map<String, Value> = (0..MAX_ATTRIBUTES)
        .map(|i| (format!("a{i}"), json!(1)))
        .collect();
    attrs.insert("z".into(), json!(1));
    let text = json!({"records": [{"attributes": attrs}]})
        .to_string()
        .replace(r#""z":"#, r#""\ud800":"#);
    assert_eq!(decode(&text).unwrap_err().code, ApiCode::OutOfRange);
    // Where unknown keys are refused, so are these.
    let e = decode(r#"{"records":[{"identifiers":{"\ud800":1}}]}"#).unwrap_err();
    assert!(e.message.contains(r#"unknown key "\ud800""#), "{e}");
}

#[test]
fn associations_must_be_well_formed() {
    for bad in [
        json!([{"object_type": "Garage", "records": []}]),
        json!([{"object_type": "garage", "action": "attach", "records": []}]),
        json!([{"object_type": "garage"}]),
        json!([{"object_type": "garage", "records": [{"identifiers": {}}]}]),
        json!([{"object_type": "garage", "records": [{"identifiers": {"id": 1, "ext_id": "a"}}]}]),
        json!({"object_type": "garage"}),
    ] {
        let (c, _) = code(json!({"records": [{"associations": bad.clone()}]}));
        assert_eq!(c, ApiCode::InvalidParameter, "{bad}");
    }
}

#[test]
fn fingerprints_ignore_spelling_but_not_content() {
    let fp = |s: &str| {
        Job::decode(ProcessKind::Upsert, s.as_bytes())
            .unwrap()
            .fingerprint()
    };
    let a = fp(r#"{"records":[{"attributes":{"a":1,"b":[1, 2]}}]}"#);
    assert_eq!(
        a,
        fp(r#"{ "records" : [ { "attributes" : { "b":[1,2], "a":1 } } ] }"#)
    );
    assert_ne!(a, fp(r#"{"records":[{"attributes":{"a":1,"b":[1,3]}}]}"#));
    assert_ne!(
        fp(r#"{"records":[{"attributes":{"a":1e400}}]}"#),
        fp(r#"{"records":[{"attributes":{"a":"1e400"}}]}"#)
    );
}

#[test]
fn delete_batches() {
    let dec = |v: Value| DeleteBatch::decode(v.to_string().as_bytes());
    assert_eq!(
        dec(json!({"identifiers": {"ids": [1, 2]}})).unwrap(),
        DeleteBatch::Ids(vec![1, 2])
    );
    assert_eq!(
        dec(json!({"identifiers": {"ext_ids": ["a"]}})).unwrap(),
        DeleteBatch::ExtIds(vec!["a".into()])
    );
    let c = |v: Value| dec(v).unwrap_err().code;
    assert_eq!(
        c(json!({"identifiers": {"ids": [1], "ext_ids": ["a"]}})),
        ApiCode::InvalidParameter
    );
    assert_eq!(c(json!({"identifiers": {}})), ApiCode::MissingParameter);
    assert_eq!(c(json!({})), ApiCode::MissingParameter);
    assert_eq!(c(json!({"identifiers": {"ids": []}})), ApiCode::OutOfRange);
    let many: Vec<i64> = (1..=1001).collect();
    assert_eq!(
        c(json!({"identifiers": {"ids": many}})),
        ApiCode::OutOfRange
    );
    assert_eq!(
        c(json!({"identifiers": {"ids": [0]}})),
        ApiCode::InvalidParameter
    );
    assert_eq!(
        c(json!({"identifiers": {"ext_ids": [""]}})),
        ApiCode::InvalidParameter
    );
    for body in [
        r#"{"identifiers":{"ids":[1],"ids":[2]}}"#,
        r#"{"identifiers":{"ext_ids":["a\udc00"]}}"#,
        r#"{"identifiers":{"ids":[1e400]}}"#,
    ] {
        assert_eq!(
            DeleteBatch::decode(body.as_bytes()).unwrap_err().code,
            ApiCode::InvalidParameter,
            "{body}"
        );
    }
    assert_eq!(
        DeleteBatch::decode(br#"[{"identifiers":{"ids":[1]}}]"#)
            .unwrap_err()
            .code,
        ApiCode::BadRequest
    );
}
