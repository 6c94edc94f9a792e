//! Planning the association entries of a batch: replaying every link and
//! unlink request in order against the links already stored, so that the cap
//! is judged exactly as if the requests ran one by one, and then writing only
//! the net difference in two set-based statements.
//!
//! A link is symmetric: it counts toward the cap on both of its ends
//! (per record, per associated type). This module is pure; `associate` loads
//! its input and writes its output.

use std::collections::{HashMap, HashSet};

use objectsync_model::{LinkAction, RecordId, RejectionCode, TypeId};

use super::plan::Rejection;

/// One target of one association entry, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Index of the requesting record in the batch.
    pub(crate) index: usize,
    pub(crate) source: RecordId,
    pub(crate) action: LinkAction,
    pub(crate) target_type: TypeId,
    /// The target's id, or why it could not be resolved.
    pub(crate) target: Result<RecordId, Rejection>,
}

/// An unordered pair of records, normalized so that `a <= b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Link {
    pub(crate) a: RecordId,
    pub(crate) a_type: TypeId,
    pub(crate) b: RecordId,
    pub(crate) b_type: TypeId,
}

impl Link {
    fn new(x: RecordId, x_type: TypeId, y: RecordId, y_type: TypeId) -> Self {
        if x <= y {
            Self {
                a: x,
                a_type: x_type,
                b: y,
                b_type: y_type,
            }
        } else {
            Self {
                a: y,
                a_type: y_type,
                b: x,
                b_type: x_type,
            }
        }
    }
}

/// The stored links of every record the batch's requests involve.
#[derive(Debug, Default)]
pub(crate) struct State {
    links: HashSet<Link>,
    /// (record, type of the records it is linked to) → how many.
    counts: HashMap<(RecordId, TypeId), u32>,
}

impl State {
    /// Adds one stored link, given from one side (both directions are stored).
    pub(crate) fn add_stored(
        &mut self,
        src: RecordId,
        src_type: TypeId,
        dst: RecordId,
        dst_type: TypeId,
    ) {
        if self.links.insert(Link::new(src, src_type, dst, dst_type)) {
            self.count(Link::new(src, src_type, dst, dst_type), 1);
        }
    }

    fn count(&mut self, link: Link, delta: i64) {
        let mut bump = |record: RecordId, other_type: TypeId| {
            let c = self.counts.entry((record, other_type)).or_default();
            *c = u32::try_from(i64::from(*c) + delta).unwrap_or(0);
        };
        bump(link.a, link.b_type);
        if link.a != link.b {
            bump(link.b, link.a_type);
        }
    }

    fn held(&self, record: RecordId, other_type: TypeId) -> u32 {
        self.counts.get(&(record, other_type)).copied().unwrap_or(0)
    }
}

/// The net writes and the outcome counts of a batch's association entries.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct LinkPlan {
    pub(crate) adds: Vec<Link>,
    pub(crate) removes: Vec<Link>,
    pub(crate) errors: Vec<(usize, Rejection)>,
    pub(crate) linked: i32,
    pub(crate) unlinked: i32,
}

/// Replays `requests` in order. `source_type` is the batch's object type;
/// `names` maps type ids to names for messages.
pub(crate) fn plan(
    requests: Vec<Request>,
    source_type: TypeId,
    mut state: State,
    cap: u32,
    names: &HashMap<TypeId, String>,
) -> LinkPlan {
    let name = |t: TypeId| names.get(&t).map_or("?", String::as_str).to_owned();
    let stored = state.links.clone();
    let mut out = LinkPlan::default();
    for req in requests {
        let target = match req.target {
            Ok(t) => t,
            Err(rejection) => {
                out.errors.push((req.index, rejection));
                continue;
            }
        };
        let link = Link::new(req.source, source_type, target, req.target_type);
        match req.action {
            LinkAction::Link if state.links.contains(&link) => {}
            LinkAction::Link => {
                let over = if state.held(req.source, req.target_type) >= cap {
                    Some(format!(
                        "record {} already holds {cap} linked {} records",
                        req.source,
                        name(req.target_type)
                    ))
                } else if req.source != target && state.held(target, source_type) >= cap {
                    Some(format!(
                        "{} record {target} already holds {cap} linked {} records",
                        name(req.target_type),
                        name(source_type)
                    ))
                } else {
                    None
                };
                if let Some(message) = over {
                    out.errors.push((
                        req.index,
                        Rejection {
                            code: RejectionCode::TooManyAssociations,
                            message,
                        },
                    ));
                    continue;
                }
                state.links.insert(link);
                state.count(link, 1);
                out.linked += 1;
            }
            LinkAction::Unlink if state.links.remove(&link) => {
                state.count(link, -1);
                out.unlinked += 1;
            }
            LinkAction::Unlink => {}
        }
    }
    let mut adds: Vec<Link> = state.links.difference(&stored).copied().collect();
    let mut removes: Vec<Link> = stored.difference(&state.links).copied().collect();
    adds.sort_unstable();
    removes.sort_unstable();
    out.adds = adds;
    out.removes = removes;
    out
}

#[cfg(test)]
mod tests;
