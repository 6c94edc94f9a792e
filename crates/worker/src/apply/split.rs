//! A plain upsert that shares a few records with older open batches writes
//! the rest of its records beside them.
//!
//! With random keys, most batches of an organization name a record or two
//! that an older batch still being applied names too, and acceptance order
//! had them wait for all of that batch: batches on overlapping records ran
//! one at a time. Here a batch whose every conflict with older open batches
//! is by records (no links, no deletes and nothing named by `id` on its
//! side; nothing decided by flags on theirs) splits by its footprint keys:
//! in its transaction it first writes the records no older open batch
//! names, while the older batches run; then, once every one of those is
//! final, the records they share. No older open batch writes a record of
//! the first part (its footprint would name it), so those end as applying
//! the batches one by one leaves them, with the same counts and
//! rejections; the shared part reads the older batches' committed writes,
//! as it would one by one. A newer batch on any of this batch's records
//! waits for it as for any open batch.
//!
//! What keeps it safe:
//! - it waits inside its transaction for [`PATIENCE`] at most, in a slot
//!   taken only when another stays free (`Local::try_take_spare_slot`);
//!   past that it rolls back and the batch waits the usual way, without a
//!   slot. An older batch may be held up by a row this one wrote (the
//!   counters' slot rows), or not be in anyone's hands;
//! - new records get ids in request order: the shared part normally only
//!   updates (the older batches wrote those records); if it created one
//!   (an older batch rejected or deleted it), the transaction rolls back
//!   and the batch is applied whole, the usual way, its blockers final.

use std::collections::HashSet;
use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use objectsync_model::wire::{Footprint, Upsert, record_key};
use objectsync_model::{BatchMeta, ObjectType, ObjectTypeName};

use super::{Applied, ApplyConfig, Handled, Local, begin, finish, upsert};
use crate::error::WorkerError;
use crate::gate::{self, Blocker};

/// The longest a batch waits inside its transaction for the older batches
/// it shares records with. They are almost always being applied and end
/// within tens of milliseconds.
pub(super) const PATIENCE: Duration = Duration::from_secs(1);

/// A batch's records by part, as indexes into its records in request
/// order.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Parts {
    /// Named by no older open batch: written first.
    pub(super) own: Vec<usize>,
    /// Named by an older open batch: written once those are final.
    pub(super) shared: Vec<usize>,
}

/// How `batch` (of type `object_type`, footprint `mine`) splits around
/// `blockers`; `None` when it cannot: it links, deletes or names a record
/// by `id`, a blocker conflicts by its flags, or no record is its own.
pub(super) fn parts(
    object_type: &ObjectTypeName,
    batch: &Upsert<'_>,
    mine: &Footprint,
    blockers: &[Blocker],
) -> Option<Parts> {
    if mine.wide
        || mine.links
        || mine.delete
        || batch.records.iter().any(|r| !r.associations.is_empty())
    {
        return None;
    }
    let mut shared_keys = HashSet::new();
    for b in blockers {
        let keys = b.keys.as_ref()?;
        shared_keys.extend(
            keys.iter()
                .filter(|k| mine.keys.binary_search(k).is_ok())
                .copied(),
        );
    }
    let (mut own, mut shared) = (Vec::new(), Vec::new());
    for (i, r) in batch.records.iter().enumerate() {
        let named = r
            .identifiers
            .ext_id
            .as_deref()
            .is_some_and(|e| shared_keys.contains(&record_key(object_type.as_str(), e)));
        if named {
            shared.push(i);
        } else {
            own.push(i);
        }
    }
    (!own.is_empty() && !shared.is_empty()).then_some(Parts { own, shared })
}

/// Applies `batch` in its two `parts` (see the module's comment): the
/// answer, or `None` when it did not (no spare slot, the blockers did not
/// end in time, the shared part created a record) and the batch is to be
/// applied the usual way.
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply(
    pool: &Pool,
    local: &Local,
    meta: &BatchMeta,
    batch: &Upsert<'_>,
    parts: &Parts,
    blockers: &[Blocker],
    delivery: i32,
    config: ApplyConfig,
) -> Result<Option<Handled>, WorkerError> {
    let (org, pid) = (meta.org_id, meta.process_id);
    let Some(_slot) = local.try_take_spare_slot(org, pid) else {
        return Ok(None);
    };
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let object_type = match begin(&tx, meta).await? {
        Ok(t) => t,
        Err(handled) => return Ok(Some(handled)),
    };
    let mut applied = part(&tx, config, meta, &object_type, batch, &parts.own).await?;
    if !gate::ended_within(pool, org, blockers, PATIENCE).await? {
        tx.rollback().await?;
        return Ok(outcome("waited", None));
    }
    let shared = part(&tx, config, meta, &object_type, batch, &parts.shared).await?;
    if shared.counts.created > 0 {
        tx.rollback().await?;
        return Ok(outcome("created_shared", None));
    }
    let (c, s) = (&mut applied.counts, shared.counts);
    c.processed += s.processed;
    c.updated += s.updated;
    c.failed += s.failed;
    applied.rejections.extend(shared.rejections);
    finish(tx, meta, &mut applied, delivery).await?;
    Ok(outcome("applied", Some(Handled::Applied(applied.counts))))
}

/// Counts how a split ended (`objectsync_order_split_total`, label
/// `outcome`: `applied`, or why it was given up) and passes `handled` on.
fn outcome(what: &'static str, handled: Option<Handled>) -> Option<Handled> {
    metrics::counter!("objectsync_order_split_total", "outcome" => what).increment(1);
    tracing::debug!(outcome = what, "split around older batches");
    handled
}

/// The records `indexes` of `batch` upserted in `tx`, their rejections
/// numbered as in the whole batch.
async fn part(
    tx: &Transaction<'_>,
    config: ApplyConfig,
    meta: &BatchMeta,
    object_type: &ObjectType,
    batch: &Upsert<'_>,
    indexes: &[usize],
) -> Result<Applied, WorkerError> {
    let sub = Upsert {
        records: indexes.iter().map(|&i| batch.records[i].clone()).collect(),
    };
    let mut applied = upsert::apply(tx, config.engine, meta.org_id, object_type, &sub)
        .await?
        .applied;
    for r in &mut applied.rejections {
        let whole = indexes[usize::try_from(r.index).unwrap_or(0)];
        r.index = i32::try_from(whole).unwrap_or(i32::MAX);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use objectsync_model::{Job, ProcessId, ProcessKind};

    use super::*;

    fn vehicle() -> ObjectTypeName {
        ObjectTypeName::parse("vehicle").unwrap()
    }

    fn key(ext: &str) -> i64 {
        record_key("vehicle", ext)
    }

    fn blocker(id: i64, exts: &[&str]) -> Blocker {
        let mut keys: Vec<i64> = exts.iter().map(|e| key(e)).collect();
        keys.sort_unstable();
        Blocker {
            id: ProcessId(id),
            keys: Some(Arc::new(keys)),
        }
    }

    fn split(body: &str, blockers: &[Blocker]) -> Option<Parts> {
        let job = Job::decode(ProcessKind::Upsert, body.as_bytes()).unwrap();
        let Job::Upsert(batch) = &job else {
            unreachable!()
        };
        parts(&vehicle(), batch, &job.footprint(&vehicle()), blockers)
    }

    #[test]
    fn records_an_older_batch_names_go_last_in_request_order() {
        let body = r#"{"records":[
            {"identifiers":{"ext_id":"a"}},
            {"identifiers":{"ext_id":"b"}},
            {"attributes":{}},
            {"identifiers":{"ext_id":"a"}},
            {"identifiers":{"ext_id":"c"}}]}"#;
        let parts = split(body, &[blocker(1, &["a", "x"]), blocker(2, &["c"])]).unwrap();
        assert_eq!(parts.own, [1, 2]);
        assert_eq!(parts.shared, [0, 3, 4]);
    }

    #[test]
    fn no_split_when_flags_decide_or_nothing_is_its_own() {
        let plain =
            r#"{"records":[{"identifiers":{"ext_id":"a"}},{"identifiers":{"ext_id":"b"}}]}"#;
        let by_flags = Blocker {
            id: ProcessId(1),
            keys: None,
        };
        assert_eq!(split(plain, &[blocker(2, &["a"]), by_flags]), None);
        assert_eq!(split(plain, &[blocker(1, &["a", "b"])]), None);
        let by_id = r#"{"records":[{"identifiers":{"ext_id":"a"}},{"identifiers":{"id":7}}]}"#;
        assert_eq!(split(by_id, &[blocker(1, &["a"])]), None);
        let linking = r#"{"records":[{"identifiers":{"ext_id":"a"}},
            {"identifiers":{"ext_id":"b"},"associations":[{"object_type":"garage",
             "records":[{"identifiers":{"ext_id":"g"}}]}]}]}"#;
        assert_eq!(split(linking, &[blocker(1, &["a"])]), None);
    }
}
