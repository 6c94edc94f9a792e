use super::*;
use objectsync_model::prepare::Checked;

use serde_json::{Map, Value, json};

fn ids(v: Value) -> Identifiers {
    serde_json::from_value(v).unwrap()
}

fn attrs(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn borrowed(m: &Map<String, Value>) -> Attributes<'_> {
    m.iter()
        .map(|(k, v)| (k.as_str(), Checked::Normalized(v.clone())))
        .collect()
}

/// The attributes of a plan entry, as JSON.
fn shown(a: &Attributes<'_>) -> Value {
    serde_json::to_value(a).unwrap()
}

fn run<'a>(
    idents: &'a [Identifiers],
    maps: &'a [Map<String, Value>],
    existing: &Existing,
) -> Plan<'a> {
    let candidates = idents
        .iter()
        .zip(maps)
        .map(|(i, m)| Candidate {
            identifiers: i,
            attributes: Ok(borrowed(m)),
        })
        .collect();
    plan(candidates, existing, "vehicle")
}

/// Splits `(identifiers, attributes)` pairs into the two arrays `run` borrows.
fn split(records: &[(Value, Value)]) -> (Vec<Identifiers>, Vec<Map<String, Value>>) {
    records
        .iter()
        .map(|(i, a)| (ids(i.clone()), attrs(a.clone())))
        .unzip()
}

fn stored(rows: &[(i64, Option<&str>)]) -> Existing {
    let mut e = Existing::default();
    for (id, ext) in rows {
        e.insert(RecordId(*id), ext.map(str::to_owned));
    }
    e
}

#[test]
fn new_existing_and_anonymous_records() {
    let (idents, maps) = split(&[
        (json!({"ext_id": "new"}), json!({"a": 1})),
        (json!({"ext_id": "old"}), json!({"a": 2})),
        (json!({}), json!({"a": 3})),
        (json!({"id": 7}), json!({"a": 4})),
    ]);
    let p = run(&idents, &maps, &stored(&[(5, Some("old")), (7, None)]));
    assert_eq!(p.inserts.len(), 2, "new rows in request order");
    assert_eq!(p.inserts[0].ext_id, Some("new"));
    assert_eq!(shown(&p.inserts[0].attributes), json!({"a": 1}));
    assert_eq!(p.updates.len(), 2);
    assert_eq!(p.updates[0].id, RecordId(5));
    assert_eq!(p.updates[1].id, RecordId(7));
    assert_eq!(p.inserts[1].ext_id, None);
    assert_eq!(shown(&p.inserts[1].attributes), json!({"a": 3}));
    assert_eq!(
        p.outcomes,
        vec![
            Outcome::Created(Target::New(0)),
            Outcome::Updated(Target::Existing(0)),
            Outcome::Created(Target::New(1)),
            Outcome::Updated(Target::Existing(1)),
        ]
    );
}

#[test]
fn the_same_ext_id_twice_folds_in_order() {
    let (idents, maps) = split(&[
        (json!({"ext_id": "a"}), json!({"x": 1, "y": 1})),
        (json!({"ext_id": "a"}), json!({"y": 2, "z": null})),
    ]);
    let p = run(&idents, &maps, &Existing::default());
    assert_eq!(p.inserts.len(), 1);
    assert_eq!(
        shown(&p.inserts[0].attributes),
        json!({"x": 1, "y": 2, "z": null})
    );
    assert_eq!(
        p.outcomes,
        vec![
            Outcome::Created(Target::New(0)),
            Outcome::Updated(Target::New(0))
        ]
    );
}

#[test]
fn id_and_ext_id_of_one_row_fold_together() {
    let (idents, maps) = split(&[
        (json!({"ext_id": "a"}), json!({"x": 1})),
        (json!({"id": 5}), json!({"x": 2})),
        (json!({"id": 5, "ext_id": "a"}), json!({"y": 3})),
    ]);
    let p = run(&idents, &maps, &stored(&[(5, Some("a"))]));
    assert_eq!(p.updates.len(), 1);
    assert_eq!(shown(&p.updates[0].attributes), json!({"x": 2, "y": 3}));
    assert!(
        p.outcomes
            .iter()
            .all(|o| *o == Outcome::Updated(Target::Existing(0)))
    );
}

#[test]
fn unknown_id_is_rejected_without_touching_anything() {
    let (idents, maps) = split(&[(json!({"id": 9}), json!({"x": 1}))]);
    let p = run(&idents, &maps, &Existing::default());
    assert!(p.updates.is_empty());
    assert!(matches!(
        &p.outcomes[0],
        Outcome::Rejected(Rejection {
            code: RejectionCode::RecordNotFound,
            ..
        })
    ));
}

#[test]
fn both_identifiers_give_a_row_its_ext_id_or_conflict() {
    let existing = stored(&[(5, None), (6, Some("b")), (7, Some("c"))]);
    let (idents, maps) = split(&[
        (json!({"id": 5, "ext_id": "a"}), json!({})),
        (json!({"ext_id": "a"}), json!({"x": 1})),
        (json!({"id": 6, "ext_id": "zzz"}), json!({"x": 1})),
        (json!({"id": 5, "ext_id": "c"}), json!({"x": 1})),
    ]);
    let p = run(&idents, &maps, &existing);
    assert_eq!(p.updates.len(), 1, "rejected records must not touch rows");
    assert_eq!(p.updates[0].set_ext_id.as_deref(), Some("a"));
    assert_eq!(shown(&p.updates[0].attributes), json!({"x": 1}));
    assert_eq!(p.outcomes[1], Outcome::Updated(Target::Existing(0)));
    for o in &p.outcomes[2..] {
        assert!(matches!(
            o,
            Outcome::Rejected(Rejection {
                code: RejectionCode::IdentifierConflict,
                ..
            })
        ));
    }
}

#[test]
fn rejected_attributes_keep_the_record_out() {
    let i = ids(json!({"ext_id": "a"}));
    let p = plan(
        vec![Candidate {
            identifiers: &i,
            attributes: Err(Rejection {
                code: RejectionCode::InvalidAttributeValue,
                message: "bad".into(),
            }),
        }],
        &Existing::default(),
        "vehicle",
    );
    assert!(p.inserts.is_empty());
    assert!(matches!(p.outcomes[0], Outcome::Rejected(_)));
}
