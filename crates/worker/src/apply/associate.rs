//! Applying the association entries of an upsert batch, after all of its
//! records are written (so a record can link to one created in the same
//! batch): resolve the targets, lock every record involved in id order, load
//! their stored links, replay the requests (`links`), write the difference.
//!
//! Locking both ends of every link is what keeps the per-record cap exact
//! when two workers link to the same record at once: the second waits, then
//! loads the links the first committed.

use std::collections::{BTreeMap, HashMap, HashSet};

use objectsync_model::{
    Identifiers, LinkAction, ObjectType, OrgId, RecordId, RejectionCode, TypeId, Upsert,
};
use objectsync_store::links::{self, Direction};
use objectsync_store::processes::{LinkCounts, Rejection as Stored};
use objectsync_store::records::{self, Keys};
use objectsync_store::{GenericClient, Scope};

use super::links::{Link, Request, State};
use super::plan::Rejection;
use super::rejection;
use crate::error::WorkerError;

/// A target as named in the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TargetKey {
    Id(TypeId, RecordId),
    Ext(TypeId, String),
}

impl TargetKey {
    fn of(type_id: TypeId, ids: &Identifiers) -> Option<Self> {
        match (ids.id, &ids.ext_id) {
            (Some(id), _) => Some(Self::Id(type_id, RecordId(id))),
            (None, Some(ext)) => Some(Self::Ext(type_id, ext.clone())),
            (None, None) => None,
        }
    }
}

/// One target of one association entry, before resolution.
struct Pending {
    index: usize,
    source: RecordId,
    action: LinkAction,
    target_type: TypeId,
    target: Result<TargetKey, Rejection>,
}

/// The outcome of a batch's association entries.
pub(crate) struct Linked {
    pub(crate) rejections: Vec<Stored>,
    pub(crate) counts: LinkCounts,
}

/// Both stored directions of each link.
fn directions(links: &[Link]) -> Vec<Direction> {
    let mut out = Vec::with_capacity(links.len() * 2);
    for l in links {
        out.push(Direction {
            src_type: l.a_type,
            src: l.a,
            dst_type: l.b_type,
            dst: l.b,
        });
        if l.a != l.b {
            out.push(Direction {
                src_type: l.b_type,
                src: l.b,
                dst_type: l.a_type,
                dst: l.a,
            });
        }
    }
    out
}

/// The requests of `batch`, in order, with targets still unresolved;
/// records rejected earlier (`None` ids) link nothing.
fn pending(
    source: &ObjectType,
    by_name: &HashMap<&str, &ObjectType>,
    batch: &Upsert<'_>,
    record_ids: &[Option<RecordId>],
) -> Vec<Pending> {
    let mut out = Vec::new();
    for (index, record) in batch.records.iter().enumerate() {
        let Some(Some(source_id)) = record_ids.get(index) else {
            continue;
        };
        for entry in &record.associations {
            let other = entry.object_type.as_str();
            let target_type = match by_name.get(other) {
                Some(t) if source.is_associated_with(other) => t.id,
                _ => {
                    out.push(Pending {
                        index,
                        source: *source_id,
                        action: entry.action,
                        target_type: TypeId(0),
                        target: Err(Rejection {
                            code: RejectionCode::AssociationNotDefined,
                            message: format!(
                                "object types '{}' and '{other}' are not associated",
                                source.name
                            ),
                        }),
                    });
                    continue;
                }
            };
            for target in &entry.records {
                if let Some(key) = TargetKey::of(target_type, &target.identifiers) {
                    out.push(Pending {
                        index,
                        source: *source_id,
                        action: entry.action,
                        target_type,
                        target: Ok(key),
                    });
                }
            }
        }
    }
    out
}

/// Applies the association entries of `batch`, whose records were stored
/// with the ids in `record_ids`.
pub(crate) async fn apply(
    tx: &impl GenericClient,
    org: OrgId,
    source: &ObjectType,
    types: &[ObjectType],
    batch: &Upsert<'_>,
    record_ids: &[Option<RecordId>],
    cap: u32,
) -> Result<Linked, WorkerError> {
    let by_name: HashMap<&str, &ObjectType> = types.iter().map(|t| (t.name.as_str(), t)).collect();
    let names: HashMap<TypeId, String> = types.iter().map(|t| (t.id, t.name.to_string())).collect();
    let pending = pending(source, &by_name, batch, record_ids);
    if pending.is_empty() {
        return Ok(Linked {
            rejections: Vec::new(),
            counts: LinkCounts::default(),
        });
    }

    // Resolve the targets, then lock sources and targets, type by type and
    // in id order within a type, so concurrent batches lock alike.
    let resolved = resolve(tx, org, &pending).await?;
    let (involved, present) = lock_involved(tx, org, source.id, &pending, &resolved).await?;
    let state = held(tx, org, &involved).await?;

    // Replay the requests, then write the difference.
    let requests: Vec<Request> = pending
        .into_iter()
        .map(|p| Request {
            index: p.index,
            source: p.source,
            action: p.action,
            target_type: p.target_type,
            target: p.target.and_then(|key| {
                resolved
                    .get(&key)
                    .copied()
                    .filter(|id| present.contains(id))
                    .ok_or_else(|| not_found(&names, &key))
            }),
        })
        .collect();
    let plan = super::links::plan(requests, source.id, state, cap, &names);
    links::remove(tx, org, &directions(&plan.removes)).await?;
    links::insert(tx, org, &directions(&plan.adds)).await?;
    let counts = LinkCounts {
        created: plan.linked,
        removed: plan.unlinked,
        failed: i32::try_from(plan.errors.len()).unwrap_or(i32::MAX),
    };
    let rejections = plan
        .errors
        .into_iter()
        .map(|(index, r)| rejection(index, &batch.records[index].identifiers, r.code, &r.message))
        .collect();
    Ok(Linked { rejections, counts })
}

/// The records the targets of `pending` name, where they exist.
async fn resolve(
    tx: &impl GenericClient,
    org: OrgId,
    pending: &[Pending],
) -> Result<HashMap<TargetKey, RecordId>, WorkerError> {
    let mut wanted: BTreeMap<TypeId, (Vec<RecordId>, Vec<&str>)> = BTreeMap::new();
    for p in pending {
        match &p.target {
            Ok(TargetKey::Id(t, i)) => wanted.entry(*t).or_default().0.push(*i),
            Ok(TargetKey::Ext(t, e)) => wanted.entry(*t).or_default().1.push(e.as_str()),
            Err(_) => {}
        }
    }
    let mut resolved: HashMap<TargetKey, RecordId> = HashMap::new();
    for (t, (ids, exts)) in &wanted {
        let mut rows = Vec::new();
        if !ids.is_empty() {
            rows.extend(records::find(tx, Scope::of(org, *t), Keys::Ids(ids)).await?);
        }
        if !exts.is_empty() {
            rows.extend(records::find(tx, Scope::of(org, *t), Keys::ExtIds(exts)).await?);
        }
        for row in rows {
            resolved.insert(TargetKey::Id(*t, row.id), row.id);
            if let Some(ext) = row.ext_id {
                resolved.insert(TargetKey::Ext(*t, ext), row.id);
            }
        }
    }
    Ok(resolved)
}

/// Locks every source and resolved target, type by type and in id order
/// within a type: the records involved, by type, and those still present.
async fn lock_involved(
    tx: &impl GenericClient,
    org: OrgId,
    source_type: TypeId,
    pending: &[Pending],
    resolved: &HashMap<TargetKey, RecordId>,
) -> Result<(BTreeMap<TypeId, Vec<RecordId>>, HashSet<RecordId>), WorkerError> {
    let mut involved: BTreeMap<TypeId, Vec<RecordId>> = BTreeMap::new();
    for (key, id) in resolved {
        let (TargetKey::Id(t, _) | TargetKey::Ext(t, _)) = key;
        involved.entry(*t).or_default().push(*id);
    }
    involved
        .entry(source_type)
        .or_default()
        .extend(pending.iter().map(|p| p.source));
    let mut present: HashSet<RecordId> = HashSet::new();
    for (t, ids) in &mut involved {
        ids.sort_unstable();
        ids.dedup();
        present.extend(
            records::lock(tx, Scope::of(org, *t), Keys::Ids(ids))
                .await?
                .iter()
                .map(|r| r.id),
        );
    }
    Ok((involved, present))
}

/// The links the `involved` records hold now.
async fn held(
    tx: &impl GenericClient,
    org: OrgId,
    involved: &BTreeMap<TypeId, Vec<RecordId>>,
) -> Result<State, WorkerError> {
    let mut state = State::default();
    for (t, ids) in involved {
        for d in links::held_by(tx, Scope::of(org, *t), ids).await? {
            state.add_stored(d.src, d.src_type, d.dst, d.dst_type);
        }
    }
    Ok(state)
}

fn not_found(names: &HashMap<TypeId, String>, key: &TargetKey) -> Rejection {
    let name = |t: &TypeId| names.get(t).map_or("?", String::as_str).to_owned();
    let message = match key {
        TargetKey::Id(t, id) => format!("no {} record has id {id}", name(t)),
        TargetKey::Ext(t, ext) => format!("no {} record has ext_id '{ext}'", name(t)),
    };
    Rejection {
        code: RejectionCode::AssociatedRecordNotFound,
        message,
    }
}
