//! Applying the association entries of an upsert batch, after all of its
//! records are written (so a record can link to one created in the same
//! batch): resolve the targets, lock every record involved in id order, load
//! their stored links, replay the requests (`links`), write the difference.
//!
//! Locking both ends of every link is what keeps the per-record cap exact
//! when two workers link to the same record at once: the second waits, then
//! loads the links the first committed.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use objectsync_model::{Identifiers, LinkAction, ObjectType, RejectionCode, UpsertBatch};

use super::links::{self, Link, Request, State};
use super::plan::Rejection;
use super::{ErrorRow, LinkCounts};
use crate::error::WorkerError;

const RESOLVE: &str = "
    select r.type_id, r.id, r.ext_id
      from unnest($2::int4[], $3::int8[]) as u(t, i)
      join records r on r.org_id = $1 and r.type_id = u.t and r.id = u.i
    union all
    select r.type_id, r.id, r.ext_id
      from unnest($4::int4[], $5::text[]) as u(t, e)
      join records r on r.org_id = $1 and r.type_id = u.t and r.ext_id = u.e";

const LOCK: &str = "
    select r.id
      from unnest($2::int4[], $3::int8[]) as u(t, i)
      join records r on r.org_id = $1 and r.type_id = u.t and r.id = u.i
     order by r.id
       for update of r";

const LOAD_LINKS: &str = "
    select l.src_type, l.src_id, l.dst_type, l.dst_id
      from unnest($2::int4[], $3::int8[]) as u(t, i)
      join record_links l on l.org_id = $1 and l.src_type = u.t and l.src_id = u.i";

const INSERT_LINKS: &str = "
    insert into record_links (org_id, src_type, src_id, dst_type, dst_id)
    select $1, u.st, u.si, u.dt, u.di
      from unnest($2::int4[], $3::int8[], $4::int4[], $5::int8[]) as u(st, si, dt, di)
        on conflict do nothing";

const DELETE_LINKS: &str = "
    delete from record_links l
     using unnest($2::int4[], $3::int8[], $4::int4[], $5::int8[]) as u(st, si, dt, di)
     where l.org_id = $1 and l.src_type = u.st and l.src_id = u.si
       and l.dst_type = u.dt and l.dst_id = u.di";

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
    batch: &UpsertBatch,
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
            for ids in &entry.records {
                if let Some(key) = TargetKey::of(target_type, ids) {
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

    // 2. Resolve the targets, then lock sources and targets in id order.
    let keys: HashSet<&TargetKey> = pending
        .iter()
        .filter_map(|p| p.target.as_ref().ok())
        .collect();
    let (mut id_types, mut ids, mut ext_types, mut exts) = (vec![], vec![], vec![], vec![]);
    for key in &keys {
        match key {
            TargetKey::Id(t, i) => {
                id_types.push(*t);
                ids.push(*i);
            }
            TargetKey::Ext(t, e) => {
                ext_types.push(*t);
                exts.push(e.as_str());
            }
        }
    }
    let stmt = tx.prepare_cached(RESOLVE).await?;
    let mut resolved: HashMap<TargetKey, i64> = HashMap::new();
    for row in tx
        .query(&stmt, &[&org_id, &id_types, &ids, &ext_types, &exts])
        .await?
    {
        let (t, id, ext): (i32, i64, Option<String>) = (row.get(0), row.get(1), row.get(2));
        resolved.insert(TargetKey::Id(t, id), id);
        if let Some(ext) = ext {
            resolved.insert(TargetKey::Ext(t, ext), id);
        }
    }
    let mut involved: HashMap<i64, i32> = resolved
        .iter()
        .map(|(k, id)| match k {
            TargetKey::Id(t, _) | TargetKey::Ext(t, _) => (*id, *t),
        })
        .collect();
    for p in &pending {
        involved.insert(p.source, source.id);
    }
    let (lock_types, lock_ids): (Vec<i32>, Vec<i64>) =
        involved.iter().map(|(id, t)| (*t, *id)).unzip();
    let stmt = tx.prepare_cached(LOCK).await?;
    let present: HashSet<i64> = tx
        .query(&stmt, &[&org_id, &lock_types, &lock_ids])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();

    // 3. The links those records hold now.
    let stmt = tx.prepare_cached(LOAD_LINKS).await?;
    let mut state = State::default();
    for row in tx.query(&stmt, &[&org_id, &lock_types, &lock_ids]).await? {
        state.add_stored(row.get(1), row.get(0), row.get(3), row.get(2));
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

    // 5. Write the difference.
    for (sql, set) in [(DELETE_LINKS, &plan.removes), (INSERT_LINKS, &plan.adds)] {
        if set.is_empty() {
            continue;
        }
        let (st, si, dt, di) = directions(set);
        let stmt = tx.prepare_cached(sql).await?;
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
