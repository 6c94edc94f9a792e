//! What a batch touches, so that batches can be applied out of order only
//! when the order cannot show.
//!
//! The promise is that an organization's records end as if its batches had
//! been applied one at a time in `processId` order. Two batches *commute*
//! (either order gives the same records, links, counts and rejections) when
//! they name no record in common, neither names records by `id` (an id and
//! an `ext_id` may be one record, and ingest cannot tell), and neither is a
//! delete while the other adds links (deleting a record frees link slots on
//! records the delete does not name, which changes whether a link fits
//! under the cap). A footprint is what decides it: the records a batch
//! names, as 64-bit hashes of (object type, `ext_id`) — a collision only
//! orders two batches that did not need it —, and those two flags.

use std::hash::Hasher;

use super::{Job, LinkAction};
use crate::names::ObjectTypeName;

/// What a batch touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Hashes of the records it names by `ext_id`, its own and link
    /// targets, sorted, each once.
    pub keys: Vec<i64>,
    /// It names a record by `id`: it conflicts with every batch.
    pub wide: bool,
    /// It adds links.
    pub links: bool,
    /// It deletes records.
    pub delete: bool,
}

/// The hash of a record named by `ext_id` (FNV-1a, stable across builds and
/// versions, since the footprints of batches accepted by one version are
/// compared by workers of the next).
pub fn record_key(object_type: &str, ext_id: &str) -> i64 {
    let mut h = fnv::FnvHasher::default();
    h.write(object_type.as_bytes());
    h.write_u8(0);
    h.write(ext_id.as_bytes());
    h.finish() as i64
}

impl Footprint {
    /// Whether `self` names a record of `keys` (sorted, as stored).
    pub fn names_any_of(&self, keys: &[i64]) -> bool {
        sorted_overlap(&self.keys, keys)
    }

    /// Whether applying `self` and `other` in either order could differ.
    pub fn conflicts_with(&self, other: &Footprint) -> bool {
        self.wide
            || other.wide
            || (self.delete && other.links)
            || (other.delete && self.links)
            || sorted_overlap(&self.keys, &other.keys)
    }
}

fn sorted_overlap(a: &[i64], b: &[i64]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

impl Job<'_> {
    /// What this batch, of object type `object_type`, touches.
    pub fn footprint(&self, object_type: &ObjectTypeName) -> Footprint {
        let mut f = Footprint::default();
        let own = object_type.as_str();
        match self {
            Job::Delete(super::DeleteBatch::Ids(_)) => {
                f.wide = true;
                f.delete = true;
            }
            Job::Delete(super::DeleteBatch::ExtIds(exts)) => {
                f.delete = true;
                f.keys = exts.iter().map(|e| record_key(own, e)).collect();
            }
            Job::Upsert(batch) => {
                for r in &batch.records {
                    f.wide |= r.identifiers.id.is_some();
                    if let Some(ext) = &r.identifiers.ext_id {
                        f.keys.push(record_key(own, ext));
                    }
                    for entry in &r.associations {
                        f.links |= entry.action == LinkAction::Link;
                        for t in &entry.records {
                            f.wide |= t.identifiers.id.is_some();
                            if let Some(ext) = &t.identifiers.ext_id {
                                f.keys.push(record_key(entry.object_type.as_str(), ext));
                            }
                        }
                    }
                }
            }
        }
        f.keys.sort_unstable();
        f.keys.dedup();
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ProcessKind;

    fn fp(kind: ProcessKind, body: &str) -> Footprint {
        let t = ObjectTypeName::parse("vehicle").unwrap();
        Job::decode(kind, body.as_bytes()).unwrap().footprint(&t)
    }

    fn upsert(body: &str) -> Footprint {
        fp(ProcessKind::Upsert, body)
    }

    #[test]
    fn batches_on_other_records_commute() {
        let a = upsert(r#"{"records":[{"identifiers":{"ext_id":"a"}},{"attributes":{}}]}"#);
        let b = upsert(r#"{"records":[{"identifiers":{"ext_id":"b"}}]}"#);
        assert!(!a.conflicts_with(&b));
        assert_eq!(
            a.keys.len(),
            1,
            "a record without identifiers names nothing"
        );
    }

    #[test]
    fn batches_on_a_common_record_do_not() {
        let a = upsert(r#"{"records":[{"identifiers":{"ext_id":"a"}}]}"#);
        let b = upsert(
            r#"{"records":[{"identifiers":{"ext_id":"z"}},{"identifiers":{"ext_id":"a"}}]}"#,
        );
        assert!(a.conflicts_with(&b) && b.conflicts_with(&a));
        let link = upsert(
            r#"{"records":[{"identifiers":{"ext_id":"x"},"associations":[
            {"object_type":"vehicle","action":"unlink","records":[{"identifiers":{"ext_id":"a"}}]}]}]}"#,
        );
        assert!(
            link.conflicts_with(&a),
            "a link target is a record the batch touches"
        );
        let other_type = upsert(
            r#"{"records":[{"identifiers":{"ext_id":"x"},"associations":[
            {"object_type":"garage","records":[{"identifiers":{"ext_id":"a"}}]}]}]}"#,
        );
        assert!(
            !other_type.conflicts_with(&a),
            "garage 'a' is not vehicle 'a'"
        );
    }

    #[test]
    fn ids_and_deletes_against_links_conflict_widely() {
        let by_id = upsert(r#"{"records":[{"identifiers":{"id":7}}]}"#);
        let b = upsert(r#"{"records":[{"identifiers":{"ext_id":"b"}}]}"#);
        assert!(by_id.wide && by_id.conflicts_with(&b));
        let delete = fp(ProcessKind::Delete, r#"{"identifiers":{"ext_ids":["q"]}}"#);
        assert!(!delete.conflicts_with(&b));
        let links = upsert(
            r#"{"records":[{"identifiers":{"ext_id":"c"},"associations":[
            {"object_type":"garage","records":[{"identifiers":{"ext_id":"g"}}]}]}]}"#,
        );
        assert!(delete.conflicts_with(&links) && links.conflicts_with(&delete));
        assert!(fp(ProcessKind::Delete, r#"{"identifiers":{"ids":[1]}}"#).wide);
    }

    #[test]
    fn keys_are_stable() {
        assert_eq!(record_key("vehicle", "a"), record_key("vehicle", "a"));
        assert_ne!(record_key("vehicle", "a"), record_key("vehicle", "b"));
        assert_ne!(record_key("vehicle", "ab"), record_key("vehicleab", ""));
        // FNV-1a of "vehicle\0a": a change of hash would let batches
        // accepted before an upgrade be reordered after it.
        assert_eq!(record_key("vehicle", "a"), -2_561_865_304_936_018_956);
    }
}
