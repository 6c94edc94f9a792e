use super::*;
use crate::error::ApiCode;
use crate::limits::{MAX_ASSOCIATION_ENTRIES, MAX_ATTRIBUTES, MAX_RECORDS_PER_BATCH};
use serde_json::json;

fn parse(v: Value) -> Result<UpsertBatch, RequestError> {
    UpsertBatch::parse(v.to_string().as_bytes())
}

fn code(v: Value) -> (ApiCode, String) {
    let e = parse(v).unwrap_err();
    (e.code, e.message)
}

#[test]
fn accepts_a_typical_batch() {
    let b = parse(json!({"records": [
        {"identifiers": {"ext_id": "v1"}, "attributes": {"name": "A"}},
        {"identifiers": {"id": 7, "ext_id": "v2"}},
        {"attributes": {"name": "no ids"}},
        {"identifiers": {"ext_id": "v3"}, "associations": [
            {"object_type": "garage", "records": [{"identifiers": {"ext_id": "g1"}}]},
            {"object_type": "garage", "action": "unlink", "records": [{"identifiers": {"id": 3}}]}
        ]}
    ]}))
    .unwrap();
    assert_eq!(b.records.len(), 4);
    assert_eq!(b.records[1].identifiers.id, Some(7));
    assert!(b.records[2].identifiers.is_empty());
    assert_eq!(b.records[3].associations[0].action, LinkAction::Link);
    assert_eq!(b.records[3].associations[1].action, LinkAction::Unlink);
}

#[test]
fn body_must_be_an_object_with_records() {
    assert_eq!(
        UpsertBatch::parse(b"not json").unwrap_err().code,
        ApiCode::BadRequest
    );
    assert_eq!(code(json!([1])).0, ApiCode::BadRequest);
    assert_eq!(code(json!({"rows": []})).0, ApiCode::BadRequest);
    assert_eq!(code(json!({"records": {}})).0, ApiCode::BadRequest);
}

#[test]
fn record_count_is_bounded() {
    assert_eq!(code(json!({"records": []})).0, ApiCode::OutOfRange);
    let many: Vec<Value> = (0..=MAX_RECORDS_PER_BATCH).map(|_| json!({})).collect();
    assert_eq!(code(json!({ "records": many })).0, ApiCode::OutOfRange);
    let max: Vec<Value> = (0..MAX_RECORDS_PER_BATCH).map(|_| json!({})).collect();
    assert!(parse(json!({ "records": max })).is_ok());
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
    // Eleven targets split over two entries of the same type and action.
    let (c, m) = code(json!({"records": [{}, {}, {"associations": [
        {"object_type": "garage", "records": targets(6)},
        {"object_type": "garage", "action": "link", "records": targets(5)}
    ]}]}));
    assert_eq!(c, ApiCode::OutOfRange);
    assert!(m.contains("records[2]"), "{m}");
    // Ten to link and ten to unlink is fine.
    assert!(
        parse(json!({"records": [{"associations": [
            {"object_type": "garage", "records": targets(10)},
            {"object_type": "garage", "action": "unlink", "records": targets(10)}
        ]}]}))
        .is_ok()
    );
}

#[test]
fn identifiers_must_be_well_formed() {
    for bad in [
        json!({"id": 0}),
        json!({"id": -3}),
        json!({"id": 1.5}),
        json!({"id": "12"}),
        json!({"ext_id": ""}),
        json!({"ext_id": 12}),
        json!({"ext_id": "x".repeat(256)}),
        json!({"ext_id": "a\u{0}b"}),
        json!({"email": "a@b.c"}),
        json!("v1"),
    ] {
        let (c, m) = code(json!({"records": [{}, {"identifiers": bad.clone()}]}));
        assert_eq!(c, ApiCode::InvalidParameter, "{bad}");
        assert!(m.contains("records[1]"), "{bad}: {m}");
    }
    assert!(parse(json!({"records": [{"identifiers": {"ext_id": "é".repeat(255)}}]})).is_ok());
    assert!(parse(json!({"records": [{"identifiers": {}}]})).is_ok());
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
fn envelope_round_trip_keeps_records() {
    let b = parse(json!({"records": [
        {"identifiers": {"ext_id": "v1"}, "attributes": {"name": "A", "gone": null}}
    ]}))
    .unwrap();
    let json = serde_json::to_string(&b).unwrap();
    let back: UpsertBatch = serde_json::from_str(&json).unwrap();
    assert_eq!(back, b);
}

#[test]
fn delete_batches() {
    let ok = |v: Value| DeleteBatch::parse(v.to_string().as_bytes());
    assert_eq!(
        ok(json!({"identifiers": {"ids": [1, 2]}})).unwrap(),
        DeleteBatch::Ids(vec![1, 2])
    );
    assert_eq!(
        ok(json!({"identifiers": {"ext_ids": ["a"]}})).unwrap(),
        DeleteBatch::ExtIds(vec!["a".into()])
    );
    let c = |v: Value| ok(v).unwrap_err().code;
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
}
