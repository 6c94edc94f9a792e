//! The records every stage writes: an `ext_id` and ten attributes of mixed
//! types, about 300 bytes of JSON each, generated deterministically so that
//! the update passes rewrite exactly the records the insert passes made.

use serde_json::{Value, json};

/// Records per batch, as producers send them.
pub(crate) const BATCH: usize = 1000;

/// The object type's attributes: key, type, category options.
const ATTRIBUTES: [(&str, &str, &[&str]); 10] = [
    ("name", "text", &[]),
    ("description", "text", &[]),
    ("price", "number", &[]),
    ("quantity", "number", &[]),
    ("rating", "number", &[]),
    ("active", "boolean", &[]),
    ("registered", "date", &[]),
    ("website", "url", &[]),
    ("color", "category", &["red", "green", "blue"]),
    ("tags", "multiple_category", &["new", "sale", "eco"]),
];

/// The object type's definition (matching the attributes below); labels are
/// the keys.
pub(crate) fn definition() -> Value {
    let attributes: Vec<Value> = ATTRIBUTES
        .iter()
        .map(|(key, kind, options)| {
            let mut a = json!({"key": key, "label": key, "type": kind});
            if !options.is_empty() {
                a["options"] = options
                    .iter()
                    .map(|o| json!({"key": o, "label": o}))
                    .collect();
            }
            a
        })
        .collect();
    json!({"label": "Bench items", "attributes": attributes})
}

pub(crate) fn ext_id(run: &str, i: usize) -> String {
    format!("{run}-{i:08}")
}

/// The attributes of record `i`, in `version` (1 for inserts, 2 for updates).
pub(crate) fn attributes(i: usize, version: u32) -> Value {
    let colors = ["red", "green", "blue"];
    json!({
        "name": format!("Item {i} v{version}"),
        "description": format!("A benchmark record, number {i}, written by pass {version} of the run."),
        "price": (i % 10_000) as f64 * 1.25 + f64::from(version),
        "quantity": i % 500,
        "rating": (i % 5) as f64 + 0.5,
        "active": (i + version as usize).is_multiple_of(2),
        "registered": format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
        "website": format!("https://example.com/items/{i}"),
        "color": colors[(i + version as usize) % 3],
        "tags": if version == 1 { json!(["new"]) } else { json!(["sale", "eco"]) },
    })
}

/// The request body of one batch: records `indices`, in that order.
pub(crate) fn body(run: &str, indices: impl IntoIterator<Item = usize>, version: u32) -> Vec<u8> {
    let records: Vec<Value> = indices
        .into_iter()
        .map(|i| json!({"identifiers": {"ext_id": ext_id(run, i)}, "attributes": attributes(i, version)}))
        .collect();
    json!({ "records": records }).to_string().into_bytes()
}

/// Request bodies of `records` records in batches of [`BATCH`], starting at
/// record `from`.
pub(crate) fn bodies(run: &str, from: usize, records: usize, version: u32) -> Vec<Vec<u8>> {
    (from..from + records)
        .step_by(BATCH)
        .map(|start| body(run, start..(start + BATCH).min(from + records), version))
        .collect()
}

/// A batch of records every one of which the worker rejects (a `price` that
/// is not a number), so that its process has a page of errors to read.
pub(crate) fn rejected_body(run: &str) -> Vec<u8> {
    let records: Vec<Value> = (0..BATCH)
        .map(|i| json!({"identifiers": {"ext_id": ext_id(run, i)}, "attributes": {"price": "not a number"}}))
        .collect();
    json!({ "records": records }).to_string().into_bytes()
}

/// xorshift64*: the bench needs the same "random" keys in every run and in
/// both the end-to-end and the raw pass, not a good generator.
struct XorShift(u64);

impl XorShift {
    /// Uniform in `0..n` (multiply-shift: the bias is below 2^-40 for any
    /// table this bench loads).
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((u128::from(x) * n as u128) >> 64) as usize
    }
}

/// `updates` record indices drawn uniformly from `0..records`, in batches of
/// [`BATCH`]. No index twice in a batch (the raw upsert would refuse to touch
/// a row twice in one statement), and each batch in ascending order, so that
/// concurrent batches lock shared rows in the same order and never deadlock;
/// an index may recur across batches, as it would in real traffic.
pub(crate) fn random_batches(records: usize, updates: usize, seed: u64) -> Vec<Vec<usize>> {
    assert!(records >= BATCH, "too few records to draw a batch from");
    let mut rng = XorShift(seed | 1);
    (0..updates)
        .step_by(BATCH)
        .map(|start| {
            let size = BATCH.min(updates - start);
            let mut batch = std::collections::BTreeSet::new();
            while batch.len() < size {
                batch.insert(rng.below(records));
            }
            batch.into_iter().collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_about_300_bytes() {
        let one = json!({"identifiers": {"ext_id": ext_id("run", 12345)}, "attributes": attributes(12345, 1)});
        let len = one.to_string().len();
        assert!((250..=400).contains(&len), "{len} bytes");
    }

    #[test]
    fn bodies_split_in_batches() {
        let b = bodies("r", 0, 2500, 1);
        assert_eq!(b.len(), 3);
        let last: Value = serde_json::from_slice(&b[2]).unwrap();
        assert_eq!(last["records"].as_array().unwrap().len(), 500);
    }

    #[test]
    fn random_batches_are_sorted_distinct_in_range_and_repeatable() {
        let batches = random_batches(5000, 2500, 7);
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[2].len(), 500);
        for b in &batches {
            assert!(b.windows(2).all(|w| w[0] < w[1]));
            assert!(b.iter().all(|&i| i < 5000));
        }
        assert_eq!(batches, random_batches(5000, 2500, 7));
    }

    #[test]
    fn random_batches_cover_the_range() {
        let all: Vec<usize> = random_batches(10_000, 10_000, 1).concat();
        let low = all.iter().filter(|&&i| i < 5000).count();
        assert!(
            (4500..5500).contains(&low),
            "{low} of 10,000 in the lower half"
        );
    }
}
