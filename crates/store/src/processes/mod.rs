//! The `processes` and `process_errors` tables: the process state machine
//! (`queued → in_process → completed | failed`) and what clients and
//! dashboards read of it.
//!
//! `in_process` is committed on its own as soon as a worker receives a
//! batch, so clients see progress; `completed` is committed with the batch's
//! effects; `failed` when the batch is dead-lettered or its message is lost.
//! A final process never changes again: every transition is guarded by
//! `status in ('queued', 'in_process')`.

mod rejections;
mod row;
mod transitions;

pub use rejections::{Rejection, StoredRejection, rejections, write_rejections};
pub(crate) use row::{COLUMN_COUNT, COLUMNS, from_row};
pub use row::{
    Counts, LinkCounts, NewProcess, Order, Process, count, exists, get, insert, page, page_sql,
};
pub use transitions::{
    XactStatus, complete, fail, fail_with_last_error, lock, mark_started, record_attempt_error,
    status, xact_status,
};
