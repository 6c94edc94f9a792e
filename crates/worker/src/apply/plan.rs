//! Planning an upsert batch: deciding, for each record in request order,
//! which stored row it writes to, and folding the records that write to the
//! same row into one change.
//!
//! Folding is what lets the apply step be set-based: PostgreSQL refuses to
//! touch one row twice in one `insert ... on conflict` or `update ... from`,
//! so the same `ext_id` (or `id`) twice in a batch must become one write
//! whose attributes are the records' attributes merged in order.
//! This module is pure; `upsert` runs its result against the database.

use std::collections::HashMap;

use objectsync_model::prepare::Attributes;
use objectsync_model::{Identifiers, RecordId, RejectionCode};

/// A record refused, with what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) code: RejectionCode,
    pub(crate) message: String,
}

/// Which row a record writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A stored row, by id (index into `Plan::updates`).
    Existing(usize),
    /// A row to create, for a new `ext_id` or for a record without
    /// identifiers (index into `Plan::inserts`).
    New(usize),
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The first record to write a new row.
    Created(Target),
    /// A record that changed a row that existed or an earlier record created.
    Updated(Target),
    Rejected(Rejection),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Update<'a> {
    pub(crate) id: RecordId,
    /// An `ext_id` to give a row that had none (record sent both identifiers).
    pub(crate) set_ext_id: Option<String>,
    /// Merged attributes; `null` clears.
    pub(crate) attributes: Attributes<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Insert<'a> {
    /// `None` for a record without identifiers.
    pub(crate) ext_id: Option<&'a str>,
    pub(crate) attributes: Attributes<'a>,
}

/// The set-based writes of a batch and the outcome of each record.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Plan<'a> {
    pub(crate) updates: Vec<Update<'a>>,
    /// New rows, in request order (so that ids follow it).
    pub(crate) inserts: Vec<Insert<'a>>,
    pub(crate) outcomes: Vec<Outcome>,
}

/// The stored rows a batch names, as locked before planning.
#[derive(Debug, Default)]
pub(crate) struct Existing {
    /// id → current ext_id.
    pub(crate) by_id: HashMap<RecordId, Option<String>>,
    /// ext_id → id.
    pub(crate) by_ext: HashMap<String, RecordId>,
}

impl Existing {
    pub(crate) fn insert(&mut self, id: RecordId, ext_id: Option<String>) {
        if let Some(ext) = &ext_id {
            self.by_ext.insert(ext.clone(), id);
        }
        self.by_id.insert(id, ext_id);
    }
}

/// One record as the planner sees it: identifiers and checked attributes.
pub(crate) struct Candidate<'a> {
    pub(crate) identifiers: &'a Identifiers,
    pub(crate) attributes: Result<Attributes<'a>, Rejection>,
}

#[derive(Default)]
struct Planner<'a> {
    plan: Plan<'a>,
    /// id → index in `plan.updates`.
    update_slot: HashMap<RecordId, usize>,
    /// ext_id → where it points now, including assignments made by this batch.
    ext_target: HashMap<&'a str, Target>,
}

impl<'a> Planner<'a> {
    fn existing(&mut self, id: RecordId) -> Target {
        let slot = *self.update_slot.entry(id).or_insert_with(|| {
            self.plan.updates.push(Update {
                id,
                set_ext_id: None,
                attributes: Attributes::new(),
            });
            self.plan.updates.len() - 1
        });
        Target::Existing(slot)
    }

    fn merge(&mut self, target: Target, attrs: Attributes<'a>) {
        let into = match target {
            Target::Existing(i) => &mut self.plan.updates[i].attributes,
            Target::New(i) => &mut self.plan.inserts[i].attributes,
        };
        if into.is_empty() {
            // The first record to write the row, as most are: no merge.
            *into = attrs;
        } else {
            into.extend(attrs);
        }
    }

    fn resolve(
        &mut self,
        ids: &'a Identifiers,
        existing: &Existing,
        type_name: &str,
    ) -> Result<Outcome, Rejection> {
        match (ids.id.map(RecordId), ids.ext_id.as_deref()) {
            (Some(id), ext) => {
                let Some(stored_ext) = existing.by_id.get(&id) else {
                    return Err(Rejection {
                        code: RejectionCode::RecordNotFound,
                        message: format!("no {type_name} record has id {id}"),
                    });
                };
                let assigned = self
                    .update_slot
                    .get(&id)
                    .and_then(|&slot| self.plan.updates[slot].set_ext_id.as_deref());
                let assign = match (ext, stored_ext.as_deref().or(assigned)) {
                    (None, _) => None,
                    (Some(ext), Some(current)) if current == ext => None,
                    (Some(ext), Some(current)) => {
                        return Err(Rejection {
                            code: RejectionCode::IdentifierConflict,
                            message: format!("record {id} has ext_id '{current}', not '{ext}'"),
                        });
                    }
                    (Some(ext), None)
                        if self.ext_target.contains_key(ext)
                            || existing.by_ext.contains_key(ext) =>
                    {
                        return Err(Rejection {
                            code: RejectionCode::IdentifierConflict,
                            message: format!(
                                "ext_id '{ext}' belongs to another record than id {id}"
                            ),
                        });
                    }
                    (Some(ext), None) => Some(ext),
                };
                let target = self.existing(id);
                if let (Some(ext), Target::Existing(slot)) = (assign, target) {
                    self.plan.updates[slot].set_ext_id = Some(ext.to_owned());
                    self.ext_target.insert(ext, target);
                }
                Ok(Outcome::Updated(target))
            }
            (None, Some(ext)) => {
                if let Some(&target) = self.ext_target.get(ext) {
                    return Ok(Outcome::Updated(target));
                }
                let target = match existing.by_ext.get(ext) {
                    Some(&id) => {
                        let t = self.existing(id);
                        self.ext_target.insert(ext, t);
                        return Ok(Outcome::Updated(t));
                    }
                    None => {
                        self.plan.inserts.push(Insert {
                            ext_id: Some(ext),
                            attributes: Attributes::new(),
                        });
                        Target::New(self.plan.inserts.len() - 1)
                    }
                };
                self.ext_target.insert(ext, target);
                Ok(Outcome::Created(target))
            }
            (None, None) => {
                self.plan.inserts.push(Insert {
                    ext_id: None,
                    attributes: Attributes::new(),
                });
                Ok(Outcome::Created(Target::New(self.plan.inserts.len() - 1)))
            }
        }
    }
}

/// Plans a batch against the rows it names. Records are taken in order, so
/// for a row written twice the later record's values win.
pub(crate) fn plan<'a>(
    candidates: Vec<Candidate<'a>>,
    existing: &Existing,
    type_name: &str,
) -> Plan<'a> {
    let mut planner = Planner::default();
    for candidate in candidates {
        let outcome = candidate.attributes.and_then(|attrs| {
            let outcome = planner.resolve(candidate.identifiers, existing, type_name)?;
            if let Outcome::Created(t) | Outcome::Updated(t) = outcome {
                planner.merge(t, attrs);
            }
            Ok(outcome)
        });
        planner
            .plan
            .outcomes
            .push(outcome.unwrap_or_else(Outcome::Rejected));
    }
    planner.plan
}

#[cfg(test)]
mod tests;
