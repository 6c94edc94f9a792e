//! The records every stage writes: an `ext_id` and ten attributes of mixed
//! types, about 300 bytes of JSON each, generated deterministically so that
//! the update passes rewrite exactly the records the insert passes made.

use serde_json::{Value, json};

/// Records per batch, as producers send them.
pub(crate) const BATCH: usize = 1000;

/// The object type's definition (matching the attributes below).
pub(crate) fn definition() -> Value {
    json!({
        "label": "Bench items",
        "attributes": [
            {"key": "name", "label": "Name", "type": "text"},
            {"key": "description", "label": "Description", "type": "text"},
            {"key": "price", "label": "Price", "type": "number"},
            {"key": "quantity", "label": "Quantity", "type": "number"},
            {"key": "rating", "label": "Rating", "type": "number"},
            {"key": "active", "label": "Active", "type": "boolean"},
            {"key": "registered", "label": "Registered", "type": "date"},
            {"key": "website", "label": "Website", "type": "url"},
            {"key": "color", "label": "Color", "type": "category",
             "options": [{"key": "red", "label": "Red"}, {"key": "green", "label": "Green"}, {"key": "blue", "label": "Blue"}]},
            {"key": "tags", "label": "Tags", "type": "multiple_category",
             "options": [{"key": "new", "label": "New"}, {"key": "sale", "label": "Sale"}, {"key": "eco", "label": "Eco"}]}
        ]
    })
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

/// Request bodies of `records` records in batches of [`BATCH`], starting at
/// record `from`.
pub(crate) fn bodies(run: &str, from: usize, records: usize, version: u32) -> Vec<Vec<u8>> {
    (from..from + records)
        .step_by(BATCH)
        .map(|start| {
            let end = (start + BATCH).min(from + records);
            let records: Vec<Value> = (start..end)
                .map(|i| json!({"identifiers": {"ext_id": ext_id(run, i)}, "attributes": attributes(i, version)}))
                .collect();
            json!({ "records": records }).to_string().into_bytes()
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
}
