//! `GET /v3/processes`, `GET /v3/processes/{id}` and its `/errors`.

use axum::Json;
use axum::extract::{Path, State};
use objectsync_model::ApiCode;
use serde_json::{Map, Value, json};
use tokio_postgres::Row;

use super::{Params, timestamp};
use crate::auth::Org;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const COLUMNS: &str = "id, name::text, status::text, object_type, records_total,
    records_processed, records_created, records_updated, records_deleted, records_failed,
    links_created, links_removed, links_failed, error, created_at, started_at, completed_at";

fn name_is_upsert(row: &Row) -> bool {
    row.get::<_, &str>("name") == "OBJECT_RECORDS_UPSERT"
}

fn process_json(row: &Row) -> Value {
    let ts = |name: &str| {
        row.get::<_, Option<chrono::DateTime<chrono::Utc>>>(name)
            .map(timestamp)
    };
    let count = |name: &str| row.get::<_, i32>(name);
    let mut info = Map::new();
    info.insert(
        "records".into(),
        json!({
            "total": count("records_total"),
            "processed": count("records_processed"),
            "created": count("records_created"),
            "updated": count("records_updated"),
            "deleted": count("records_deleted"),
            "failed": count("records_failed"),
        }),
    );
    if name_is_upsert(row) {
        info.insert(
            "associations".into(),
            json!({
                "linked": count("links_created"),
                "unlinked": count("links_removed"),
                "failed": count("links_failed"),
            }),
        );
    }
    if let Some(error) = row.get::<_, Option<String>>("error") {
        info.insert("error".into(), Value::String(error));
    }
    json!({
        "id": row.get::<_, i64>("id"),
        "name": row.get::<_, String>("name"),
        "status": row.get::<_, String>("status"),
        "object_type": row.get::<_, String>("object_type"),
        "created_at": ts("created_at"),
        "started_at": ts("started_at"),
        "completed_at": ts("completed_at"),
        "info": info,
    })
}

fn process_id(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::invalid(format!("processId must be a positive integer, got '{raw}'"))
    })
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("Process {id} not found"))
}

pub(super) async fn get(
    org: Org,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = process_id(&raw)?;
    let client = state.pool.get().await?;
    let sql = format!("select {COLUMNS} from processes where org_id = $1 and id = $2");
    let row = client.query_opt(sql.as_str(), &[&org.id, &id]).await?;
    row.map(|r| Json(process_json(&r)))
        .ok_or_else(|| not_found(id))
}

pub(super) async fn list(
    org: Org,
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let limit = params.int("limit", Some(10), 1, 50, ApiCode::OutOfRange)?;
    let offset = params.int("offset", Some(0), 0, i64::MAX, ApiCode::InvalidParameter)?;
    let sort = params.sort()?;
    let client = state.pool.get().await?;
    let sql = format!(
        "select {COLUMNS} from processes where org_id = $1
         order by id {} limit $2 offset $3",
        sort.sql()
    );
    let rows = client
        .query(sql.as_str(), &[&org.id, &limit, &offset])
        .await?;
    let count: i64 = client
        .query_one(
            "select count(*) from processes where org_id = $1",
            &[&org.id],
        )
        .await?
        .get(0);
    Ok(Json(json!({
        "count": count,
        "processes": rows.iter().map(process_json).collect::<Vec<_>>(),
    })))
}

pub(super) async fn errors(
    org: Org,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let id = process_id(&raw)?;
    let limit = params.int("limit", Some(50), 1, 1000, ApiCode::OutOfRange)?;
    let offset = params.int("offset", Some(0), 0, i64::MAX, ApiCode::InvalidParameter)?;
    let client = state.pool.get().await?;
    let exists = client
        .query_opt(
            "select 1 from processes where org_id = $1 and id = $2",
            &[&org.id, &id],
        )
        .await?;
    if exists.is_none() {
        return Err(not_found(id));
    }
    let rows = client
        .query(
            "select record_index, identifiers, code, message, count(*) over () as total
               from process_errors
              where org_id = $1 and process_id = $2
              order by position
              limit $3 offset $4",
            &[&org.id, &id, &limit, &offset],
        )
        .await?;
    let count: i64 = match rows.first() {
        Some(r) => r.get("total"),
        None => client
            .query_one(
                "select count(*) from process_errors where org_id = $1 and process_id = $2",
                &[&org.id, &id],
            )
            .await?
            .get(0),
    };
    let errors: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "index": r.get::<_, i32>("record_index"),
                "identifiers": r.get::<_, Value>("identifiers"),
                "code": r.get::<_, String>("code"),
                "message": r.get::<_, String>("message"),
            })
        })
        .collect();
    Ok(Json(json!({"count": count, "errors": errors})))
}
