//! The `process_errors` table: the records a batch rejected and the links
//! it refused, written with the batch's effects and read page by page.

use objectsync_model::{OrgId, ProcessId, RejectionCode};
use serde_json::Value;

use crate::{GenericClient, StoreResult};

/// One rejected record or refused link, as stored.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The record's index in the request.
    pub index: i32,
    /// Its identifiers, as sent.
    pub identifiers: Value,
    pub code: RejectionCode,
    pub message: String,
}

/// One stored rejection as read back.
#[derive(Debug, Clone)]
pub struct StoredRejection {
    pub index: i32,
    pub identifiers: Value,
    pub code: String,
    pub message: String,
}

/// A page of a process's rejections, in record order, and how many it has.
pub async fn rejections(
    c: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    limit: i64,
    offset: i64,
) -> StoreResult<(i64, Vec<StoredRejection>)> {
    let rows = crate::query(
        c,
        "select record_index, identifiers, code, message, count(*) over () as total
           from process_errors
          where org_id = $1 and process_id = $2
          order by position
          limit $3 offset $4",
        &[&org, &id, &limit, &offset],
    )
    .await?;
    let total = match rows.first() {
        Some(r) => r.get(4),
        None => crate::query_one(
            c,
            "select count(*) from process_errors where org_id = $1 and process_id = $2",
            &[&org, &id],
        )
        .await?
        .get(0),
    };
    let page = rows
        .iter()
        .map(|r| StoredRejection {
            index: r.get(0),
            identifiers: r.get(1),
            code: r.get(2),
            message: r.get(3),
        })
        .collect();
    Ok((total, page))
}

/// Stores a batch's rejections, in the order given.
pub async fn write_rejections(
    tx: &impl GenericClient,
    org: OrgId,
    id: ProcessId,
    rejections: &[Rejection],
) -> StoreResult<()> {
    if rejections.is_empty() {
        return Ok(());
    }
    let positions: Vec<i32> = (0..).take(rejections.len()).collect();
    let indexes: Vec<i32> = rejections.iter().map(|e| e.index).collect();
    let identifiers: Vec<&Value> = rejections.iter().map(|e| &e.identifiers).collect();
    let codes: Vec<&str> = rejections.iter().map(|e| e.code.as_str()).collect();
    let messages: Vec<&str> = rejections.iter().map(|e| e.message.as_str()).collect();
    crate::execute(
        tx,
        "insert into process_errors
                (org_id, process_id, position, record_index, identifiers, code, message)
         select $1, $2, u.pos, u.idx, u.ids, u.code, u.msg
           from unnest($3::int4[], $4::int4[], $5::jsonb[], $6::text[], $7::text[])
             as u(pos, idx, ids, code, msg)",
        &[
            &org,
            &id,
            &positions,
            &indexes,
            &identifiers,
            &codes,
            &messages,
        ],
    )
    .await
    .map(drop)
}
