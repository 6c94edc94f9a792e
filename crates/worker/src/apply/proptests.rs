//! Property: whatever body ingest accepts, the worker reads, and every
//! record gets an outcome — for generated bodies that mix valid records with
//! hostile JSON (out-of-range and huge numbers, lone surrogates, NUL, deep
//! nesting, duplicate keys at every level, very long strings, every wrong
//! type for every attribute type). Runs thousands of cases per test run.
//!
//! Ingest's verdict is `Job::decode` on the request body (what the
//! `Publisher` calls); the worker reads the metadata back from AMQP headers
//! and the body with `Job::decode` of the kind the headers name, then judges
//! attributes and plans the batch, as `apply` does before writing.

use lapin::BasicProperties;
use objectsync_infra::message;
use objectsync_model::{BatchMeta, DefinitionInput, Job, ObjectType, ObjectTypeName, ProcessKind};
use proptest::prelude::*;
use serde_json::json;

use super::plan::{self, Existing, Outcome};
use super::upsert::candidates;

/// A piece of JSON text, hostile or not, rendered by hand so that it can
/// hold what `serde_json::Value` cannot (duplicate keys, lone surrogates,
/// numbers out of range).
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Number text as sent: `1e400`, 30 digits, `-0`, `1E-400`.
    Num(&'static str),
    Str(String),
    /// String contents written raw, escapes included (`\ud800`).
    Raw(&'static str),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
    /// Arrays nested this deep around a 1.
    Deep(usize),
}

impl J {
    fn render(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(i) => out.push_str(&i.to_string()),
            J::Float(f) => out.push_str(&serde_json::to_string(f).unwrap_or_else(|_| "0".into())),
            J::Num(n) => out.push_str(n),
            J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            J::Raw(r) => {
                out.push('"');
                out.push_str(r);
                out.push('"');
            }
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(out);
                }
                out.push(']');
            }
            J::Obj(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push(':');
                    v.render(out);
                }
                out.push('}');
            }
            J::Deep(n) => {
                out.push_str(&"[".repeat(*n));
                out.push('1');
                out.push_str(&"]".repeat(*n));
            }
        }
    }
}

fn text(j: &J) -> String {
    let mut out = String::new();
    j.render(&mut out);
    out
}

/// Any scalar, hostile ones included.
fn scalar() -> impl Strategy<Value = J> {
    prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(J::Float),
        prop::sample::select(vec![
            "1e400",
            "-1e400",
            "123456789012345678901234567890",
            "-0",
            "1E-400",
            "0.1e1"
        ])
        .prop_map(J::Num),
        ".{0,12}".prop_map(J::Str),
        Just(J::Str("\u{0}".into())),
        Just(J::Str("x".repeat(10_001))),
        prop::sample::select(vec![
            "2024-06-15",
            "2024-06-15T10:00:00+02:00",
            "2024-02-30",
            "red",
            "blue",
            "gps",
            "https://example.com",
            "ftp://x",
            "a\u{0}b"
        ])
        .prop_map(|s| J::Str(s.into())),
        prop::sample::select(vec![
            r"a\ud800b",
            r"\udc00",
            r"\ud83d\ude00",
            r"\u0000",
            r"x\uZZZZ"
        ])
        .prop_map(J::Raw),
        (100usize..200).prop_map(J::Deep),
        (1usize..100).prop_map(J::Deep),
    ]
}

/// Any value: scalars, arrays and objects (with duplicate keys) of them.
fn value() -> impl Strategy<Value = J> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["a", "b", "a"]).prop_map(String::from),
                    inner
                ),
                0..4
            )
            .prop_map(J::Obj),
        ]
    })
}

/// Attribute entries: keys the vehicle type defines and some it does not,
/// each once, now and then one key twice.
fn attributes() -> impl Strategy<Value = J> {
    let keys = vec![
        "name",
        "price",
        "electric",
        "registered",
        "website",
        "color",
        "features",
        "unknown",
        "Name",
        "",
    ];
    (
        prop::sample::subsequence(keys, 0..6),
        prop::collection::vec(value(), 6),
        prop::bool::weighted(0.03),
    )
        .prop_map(|(keys, values, twice)| {
            let mut entries: Vec<(String, J)> = keys
                .iter()
                .zip(values)
                .map(|(k, v)| ((*k).to_owned(), v))
                .collect();
            if twice && let Some(first) = entries.first().cloned() {
                entries.push(first);
            }
            J::Obj(entries)
        })
}

fn identifiers() -> impl Strategy<Value = J> {
    let id = prop_oneof![
        6 => (1i64..1000).prop_map(J::Int),
        1 => scalar(),
    ];
    let ext = prop_oneof![
        8 => "[a-z0-9]{1,8}".prop_map(J::Str),
        1 => scalar(),
    ];
    prop_oneof![
        1 => Just(J::Null),
        12 => (prop::option::of(id), prop::option::of(ext.clone())).prop_map(|(i, e)| {
            let mut entries = Vec::new();
            if let Some(i) = i {
                entries.push(("id".to_owned(), i));
            }
            if let Some(e) = e {
                entries.push(("ext_id".to_owned(), e));
            }
            J::Obj(entries)
        }),
        1 => (ext.clone(), ext).prop_map(|(a, b)| J::Obj(vec![("ext_id".into(), a), ("ext_id".into(), b)])),
        1 => value(),
    ]
}

fn association() -> impl Strategy<Value = J> {
    let target = prop_oneof![
        6 => (1i64..100).prop_map(|i| J::Obj(vec![("identifiers".into(), J::Obj(vec![("id".into(), J::Int(i))]))])),
        6 => "[a-z]{1,4}".prop_map(|e| J::Obj(vec![("identifiers".into(), J::Obj(vec![("ext_id".into(), J::Str(e))]))])),
        1 => value(),
    ];
    prop_oneof![
        12 => (
            prop::sample::select(vec!["garage", "vehicle", "garage", "vehicle", "Bad"]),
            prop::option::of(prop::sample::select(vec!["link", "unlink", "link", "unlink", "attach"])),
            prop::collection::vec(target, 0..4),
            prop::bool::weighted(0.05),
        )
            .prop_map(|(t, action, targets, twice)| {
                let mut entries = vec![("object_type".to_owned(), J::Str(t.into()))];
                if let Some(a) = action {
                    entries.push(("action".into(), J::Str(a.into())));
                }
                entries.push(("records".into(), J::Arr(targets)));
                if twice {
                    entries.push(("object_type".into(), J::Str("garage".into())));
                }
                J::Obj(entries)
            }),
        1 => value(),
    ]
}

fn record() -> impl Strategy<Value = J> {
    let attributes = attributes();
    prop_oneof![
        30 => (
            prop::option::of(identifiers()),
            prop::option::of(prop_oneof![12 => attributes, 1 => value()]),
            prop::option::weighted(0.3, prop::collection::vec(association(), 0..3).prop_map(J::Arr)),
            prop::option::weighted(0.05, prop::sample::select(vec!["identifiers", "attributes", "associations", "other"])),
        )
            .prop_map(|(ids, attrs, assocs, repeated)| {
                let mut entries = Vec::new();
                if let Some(i) = ids {
                    entries.push(("identifiers".to_owned(), i));
                }
                if let Some(a) = attrs {
                    entries.push(("attributes".into(), a));
                }
                if let Some(a) = assocs {
                    entries.push(("associations".into(), a));
                }
                if let Some(key) = repeated {
                    entries.push((key.into(), J::Null));
                }
                J::Obj(entries)
            }),
        1 => value(),
    ]
}

/// A record of the right shape whose attribute values may be anything:
/// what the worker must judge one by one.
fn clean_record() -> impl Strategy<Value = J> {
    let ids = prop_oneof![
        Just(J::Null),
        "[a-z0-9]{1,6}".prop_map(|e| J::Obj(vec![("ext_id".into(), J::Str(e))])),
        (1i64..50).prop_map(|i| J::Obj(vec![("id".into(), J::Int(i))])),
    ];
    let link = ("[a-z]{1,3}", prop::bool::ANY).prop_map(|(e, unlink)| {
        J::Obj(vec![
            ("object_type".into(), J::Str("garage".into())),
            (
                "action".into(),
                J::Str(if unlink { "unlink" } else { "link" }.into()),
            ),
            (
                "records".into(),
                J::Arr(vec![J::Obj(vec![(
                    "identifiers".into(),
                    J::Obj(vec![("ext_id".into(), J::Str(e))]),
                )])]),
            ),
        ])
    });
    (ids, attributes(), prop::collection::vec(link, 0..2)).prop_map(|(i, a, l)| {
        J::Obj(vec![
            ("identifiers".into(), i),
            ("attributes".into(), a),
            ("associations".into(), J::Arr(l)),
        ])
    })
}

/// A good record, so every accepted body also has something to apply.
fn good_record() -> J {
    J::Obj(vec![
        (
            "identifiers".into(),
            J::Obj(vec![("ext_id".into(), J::Str("ok".into()))]),
        ),
        (
            "attributes".into(),
            J::Obj(vec![("name".into(), J::Str("fine".into()))]),
        ),
    ])
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => prop::collection::vec(clean_record(), 0..6).prop_map(|mut records| {
            records.insert(0, good_record());
            text(&J::Obj(vec![("records".into(), J::Arr(records))]))
        }),
        20 => prop::collection::vec(record(), 0..6).prop_map(|mut records| {
            records.insert(0, good_record());
            text(&J::Obj(vec![("records".into(), J::Arr(records))]))
        }),
        1 => value().prop_map(|v| text(&J::Obj(vec![("records".into(), v)]))),
        1 => value().prop_map(|v| text(&v)),
        1 => prop::collection::vec(record(), 1..3).prop_map(|r| text(&J::Arr(r))),
    ]
}

fn vehicle() -> ObjectType {
    let def = DefinitionInput::from_json(&json!({"label": "V", "attributes": [
        {"key": "name", "label": "Name", "type": "text"},
        {"key": "price", "label": "Price", "type": "number"},
        {"key": "electric", "label": "Electric", "type": "boolean"},
        {"key": "registered", "label": "Registered", "type": "date"},
        {"key": "website", "label": "Website", "type": "url"},
        {"key": "color", "label": "Color", "type": "category",
         "options": [{"key": "red", "label": "Red"}, {"key": "blue", "label": "Blue"}]},
        {"key": "features", "label": "Features", "type": "multiple_category",
         "options": [{"key": "gps", "label": "GPS"}, {"key": "abs", "label": "ABS"}]}
    ]}))
    .unwrap();
    ObjectType::new(
        objectsync_model::TypeId(1),
        ObjectTypeName::parse("vehicle").unwrap(),
        def.label,
        def.attributes,
        vec![],
    )
}

/// What the worker does with a message, short of writing: read the headers,
/// read the body, judge and plan every record.
fn worker_reads(
    props: &BasicProperties,
    body: &[u8],
    vehicle: &ObjectType,
) -> Result<usize, String> {
    let meta = message::read_meta(props).map_err(|e| e.to_string())?;
    let Job::Upsert(batch) = Job::decode(meta.kind, body).map_err(|e| e.message)? else {
        return Err("not an upsert".into());
    };
    let planned = plan::plan(candidates(vehicle, &batch), &Existing::default(), "vehicle");
    for outcome in &planned.outcomes {
        if let Outcome::Rejected(r) = outcome {
            assert!(!r.message.is_empty());
        }
    }
    Ok(planned.outcomes.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_one_pass_reader_agrees_with_the_careful_one(body in body()) {
        let fast = objectsync_model::Upsert::decode(body.as_bytes());
        let careful = objectsync_model::Upsert::decode_carefully(&body);
        match (fast, careful) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a.records.len(), b.records.len());
                for (x, y) in a.records.iter().zip(&b.records) {
                    prop_assert_eq!(&x.identifiers, &y.identifiers);
                    prop_assert_eq!(&x.associations, &y.associations);
                    let keys = |r: &objectsync_model::RecordIn<'_>| -> Vec<(String, String)> {
                        r.attributes.iter().map(|(k, v)| (k.to_string(), v.get().to_owned())).collect()
                    };
                    prop_assert_eq!(keys(x), keys(y));
                }
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "{} read {:?} one way, {:?} the other", body, a.is_ok(), b.is_ok()),
        }
    }

    #[test]
    fn what_ingest_accepts_the_worker_reads_and_every_record_gets_an_outcome(body in body()) {
        let vehicle = vehicle();
        match Job::decode(ProcessKind::Upsert, body.as_bytes()) {
            Ok(job) => {
                let meta = BatchMeta {
                    org_id: objectsync_model::OrgId(1),
                    process_id: objectsync_model::ProcessId(2),
                    kind: ProcessKind::Upsert,
                    object_type: ObjectTypeName::parse("vehicle").unwrap(),
                    xact_id: 3,
                    enqueued_at: chrono::Utc::now(),
                    request_id: None,
                };
                let props = BasicProperties::default().with_headers(message::headers(&meta));
                let outcomes = worker_reads(&props, body.as_bytes(), &vehicle);
                prop_assert_eq!(outcomes, Ok(job.len()), "{}", body);
            }
            Err(e) => prop_assert!((400..500).contains(&e.code.status()), "{:?} for {}", e, body),
        }
    }
}
