//! Applying the association entries of an upsert batch, after all of its
//! records are written (so a record can link to one created in the same
//! batch): resolve the targets, lock every record involved in id order, load
//! their stored links, replay the requests (`links`), write the difference.
//!
//! Locking both ends of every link is what keeps the per-record cap exact
//! when two workers link to the same record at once: the second waits, then
//! loads the links the first committed.

use std::collections::{BTreeMap, HashMap, HashSet};

use deadpool_postgres::Transaction;
use objectsync_model::{Identifiers, LinkAction, ObjectType, RejectionCode, Upsert};

use super::links::{self, Link, Request, State};
use super::plan::Rejection;
use super::{ErrorRow, LinkCounts};
use crate::error::WorkerError;

// Like `upsert`, every statement reaches its table through the primary key
// (or a unique index) by `= any` of an array, one object type at a time.

const RESOLVE_IDS: &str = "
    select id, ext_id from records where org_id = $1 and type_id = $2 and id = any($3)";

const RESOLVE_EXT_IDS: &str = "
    select id, ext_id from records where org_id = $1 and type_id = $2 and ext_id = any($3)";

const LOCK: &str = "
    select id from records
     where org_id = $1 and type_id = $2 and id = any($3)
     order by id
       for update";

const LOAD_LINKS: &str = "
    select src_id, dst_type, dst_id from record_links
     where org_id = $1 and src_type = $2 and src_id = any($3)";

const INSERT_LINKS: &str = "
    insert into record_links (org_id, src_type, src_id, dst_type, dst_id)
    select $1, u.st, u.si, u.dt, u.di
      from unnest($2::int4[], $3::int8[], $4::int4[], $5::int8[]) as u(st, si, dt, di)
        on conflict do nothing";

const DELETE_LINKS: &str = "
    delete from record_links
     where org_id = $1 and src_type = $2 and src_id = any($3)
       and (src_id, dst_type, dst_id) in (select * from unnest($3::int8[], $4::int4[], $5::int8[]))";

/// A target as named in the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TargetKey {
    Id(i32, i64),
    Ext(i32, String),
}

impl TargetKey {
    fn of(type_id: i32, ids: &Identifiers) -> Option<Self> {
        match (ids.id, &ids.ext_id) {
            (Some(id), _) => Some(Self::Id(type_id, id)),
            (None, Some(ext)) => Some(Self::Ext(type_id, ext.clone())),
            (None, None) => None,
        }
    }
}

/// Source ids, target types and target ids of stored link rows, as arrays.
type LinkEnds = (Vec<i64>, Vec<i32>, Vec<i64>);

/// One target of one association entry, before resolution.
struct Pending {
    index: usize,
    source: i64,
    action: LinkAction,
    target_type: i32,
    target: Result<TargetKey, Rejection>,
}

/// Both stored directions of each link, as four parallel arrays.
fn directions(links: &[Link]) -> (Vec<i32>, Vec<i64>, Vec<i32>, Vec<i64>) {
    let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for l in links {
        let mut push = |st, si, dt, di| {
            cols.0.push(st);
            cols.1.push(si);
            cols.2.push(dt);
            cols.3.push(di);
        };
        push(l.a_type, l.a, l.b_type, l.b);
        if l.a != l.b {
            push(l.b_type, l.b, l.a_type, l.a);
        }
    }
    cols
}

/// Applies the association entries of `batch`, whose records were stored
/// with the ids in `record_ids` (`None` for rejected records, which link
/// nothing).
pub(crate) async fn apply(
    tx: &Transaction<'_>,
    org_id: i64,
    source: &ObjectType,
    types: &[ObjectType],
    batch: &Upsert<'_>,
    record_ids: &[Option<i64>],
    cap: u32,
) -> Result<(Vec<ErrorRow>, LinkCounts), WorkerError> {
    let by_name: HashMap<&str, &ObjectType> = types.iter().map(|t| (t.name.as_str(), t)).collect();
    let names: HashMap<i32, String> = types.iter().map(|t| (t.id, t.name.to_string())).collect();

    // 1. The requests, in order, with targets still unresolved.
    let mut pending: Vec<Pending> = Vec::new();
    for (index, record) in batch.records.iter().enumerate() {
        let Some(Some(source_id)) = record_ids.get(index) else {
            continue;
        };
        for entry in &record.associations {
            let other = entry.object_type.as_str();
            let target_type = match by_name.get(other) {
                Some(t) if source.is_associated_with(other) => t.id,
                _ => {
                    let rejection = Rejection {
                        code: RejectionCode::AssociationNotDefined,
                        message: format!(
                            "object types '{}' and '{other}' are not associated",
                            source.name
                        ),
                    };
                    pending.push(Pending {
                        index,
                        source: *source_id,
                        action: entry.action,
                        target_type: 0,
                        target: Err(rejection),
                    });
                    continue;
                }
            };
            for target in &entry.records {
                if let Some(key) = TargetKey::of(target_type, &target.identifiers) {
                    pending.push(Pending {
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
    if pending.is_empty() {
        return Ok((Vec::new(), LinkCounts::default()));
    }

    // 2. Resolve the targets, then lock sources and targets, type by type
    //    and in id order within a type, so concurrent batches lock alike.
    let mut wanted: BTreeMap<i32, (Vec<i64>, Vec<&str>)> = BTreeMap::new();
    for p in &pending {
        match &p.target {
            Ok(TargetKey::Id(t, i)) => wanted.entry(*t).or_default().0.push(*i),
            Ok(TargetKey::Ext(t, e)) => wanted.entry(*t).or_default().1.push(e.as_str()),
            Err(_) => {}
        }
    }
    let mut resolved: HashMap<TargetKey, i64> = HashMap::new();
    for (t, (ids, exts)) in &wanted {
        let mut rows = Vec::new();
        if !ids.is_empty() {
            rows.extend(by_keys(tx, RESOLVE_IDS, org_id, *t, ids).await?);
        }
        if !exts.is_empty() {
            rows.extend(by_keys(tx, RESOLVE_EXT_IDS, org_id, *t, exts).await?);
        }
        for row in rows {
            let (id, ext): (i64, Option<String>) = (row.get(0), row.get(1));
            resolved.insert(TargetKey::Id(*t, id), id);
            if let Some(ext) = ext {
                resolved.insert(TargetKey::Ext(*t, ext), id);
            }
        }
    }
    let mut involved: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (key, id) in &resolved {
        let (TargetKey::Id(t, _) | TargetKey::Ext(t, _)) = key;
        involved.entry(*t).or_default().push(*id);
    }
    involved
        .entry(source.id)
        .or_default()
        .extend(pending.iter().map(|p| p.source));
    let mut present: HashSet<i64> = HashSet::new();
    let mut state = State::default();
    for (t, ids) in &mut involved {
        ids.sort_unstable();
        ids.dedup();
        let locked = by_keys(tx, LOCK, org_id, *t, &*ids).await?;
        present.extend(locked.iter().map(|r| r.get::<_, i64>(0)));
    }

    // 3. The links those records hold now.
    for (t, ids) in &involved {
        for row in by_keys(tx, LOAD_LINKS, org_id, *t, ids).await? {
            state.add_stored(row.get(0), *t, row.get(2), row.get(1));
        }
    }

    // 4. Replay the requests.
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
    let plan = links::plan(requests, source.id, state, cap, &names);

    // 5. Write the difference: removals per source type, then one insert.
    if !plan.removes.is_empty() {
        let (st, si, dt, di) = directions(&plan.removes);
        let mut by_type: BTreeMap<i32, LinkEnds> = BTreeMap::new();
        for k in 0..st.len() {
            let e = by_type.entry(st[k]).or_default();
            e.0.push(si[k]);
            e.1.push(dt[k]);
            e.2.push(di[k]);
        }
        let stmt = tx.prepare_cached(DELETE_LINKS).await?;
        for (t, (si, dt, di)) in &by_type {
            tx.execute(&stmt, &[&org_id, t, si, dt, di]).await?;
        }
    }
    if !plan.adds.is_empty() {
        let (st, si, dt, di) = directions(&plan.adds);
        let stmt = tx.prepare_cached(INSERT_LINKS).await?;
        tx.execute(&stmt, &[&org_id, &st, &si, &dt, &di]).await?;
    }
    let counts = LinkCounts {
        created: plan.linked,
        removed: plan.unlinked,
        failed: i32::try_from(plan.errors.len()).unwrap_or(i32::MAX),
    };
    let errors = plan
        .errors
        .into_iter()
        .map(|(index, r)| {
            ErrorRow::new(index, &batch.records[index].identifiers, r.code, &r.message)
        })
        .collect();
    Ok((errors, counts))
}

/// Runs one of the `(org_id, type, array of keys)` statements above.
async fn by_keys(
    tx: &Transaction<'_>,
    sql: &str,
    org_id: i64,
    type_id: i32,
    keys: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Result<Vec<tokio_postgres::Row>, WorkerError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query(&stmt, &[&org_id, &type_id, keys]).await?)
}

fn not_found(names: &HashMap<i32, String>, key: &TargetKey) -> Rejection {
    let name = |t: &i32| names.get(t).map_or("?", String::as_str).to_owned();
    let message = match key {
        TargetKey::Id(t, id) => format!("no {} record has id {id}", name(t)),
        TargetKey::Ext(t, ext) => format!("no {} record has ext_id '{ext}'", name(t)),
    };
    Rejection {
        code: RejectionCode::AssociatedRecordNotFound,
        message,
    }
}
