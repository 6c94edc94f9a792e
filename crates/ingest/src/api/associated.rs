//! `GET /v3/objects/{object_type}/associated-records`: the records linked to
//! one record, newest link first, 20 a page.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use objectsync_infra::object_types;
use objectsync_model::{ApiCode, ObjectType, ObjectTypeName};
use serde_json::{Value, json};

use super::records::{object_type, visible_attributes};
use super::{Params, timestamp};
use crate::auth::Org;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const PAGE: i64 = 20;
const MAX_TYPES: usize = 5;

/// The `id` or `ext_id` parameter: exactly one of them.
enum Source {
    Id(i64),
    ExtId(String),
}

fn source(params: &Params) -> ApiResult<Source> {
    match (params.get("id"), params.get("ext_id")) {
        (Some(_), Some(_)) => Err(ApiError::invalid("give 'id' or 'ext_id', not both")),
        (None, None) => Err(ApiError::new(
            ApiCode::MissingParameter,
            "query parameter 'id' or 'ext_id' is required",
        )),
        (Some(_), None) => Ok(Source::Id(params.int(
            "id",
            None,
            1,
            i64::MAX,
            ApiCode::InvalidParameter,
        )?)),
        (None, Some(ext)) => {
            objectsync_model::wire::check_ext_id("'ext_id'", ext)?;
            Ok(Source::ExtId(ext.to_owned()))
        }
    }
}

/// The `type` filters (at most five, each associated with the source's
/// type), or every associated type when none is given.
fn types<'a>(
    params: &Params,
    source: &ObjectType,
    all: &'a HashMap<String, ObjectType>,
) -> ApiResult<Vec<&'a ObjectType>> {
    let wanted = params.all("type");
    if wanted.len() > MAX_TYPES {
        return Err(ApiError::invalid(format!(
            "'type' may be given at most {MAX_TYPES} times"
        )));
    }
    let names: Vec<&str> = if wanted.is_empty() {
        source
            .associations
            .iter()
            .map(ObjectTypeName::as_str)
            .collect()
    } else {
        wanted
    };
    names
        .into_iter()
        .map(|name| {
            if ObjectTypeName::parse(name).is_err() {
                return Err(ApiError::invalid(format!(
                    "'{name}' is not a valid object type"
                )));
            }
            match all.get(name) {
                Some(t) if source.is_associated_with(name) => Ok(t),
                _ => Err(ApiError::invalid(format!(
                    "'{name}' is not associated with '{}'",
                    source.name
                ))),
            }
        })
        .collect()
}

pub(super) async fn list(
    org: Org,
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let wanted = source(&params)?;
    let offset = params.int("offset", Some(0), 0, i64::MAX, ApiCode::InvalidParameter)?;
    let client = state.pool.get().await?;
    let t = object_type(&**client, org.id, &name).await?;
    let all: HashMap<String, ObjectType> = object_types::list(&**client, org.id)
        .await?
        .into_iter()
        .map(|t| (t.name.to_string(), t))
        .collect();
    let targets = types(&params, &t, &all)?;
    let row = match &wanted {
        Source::Id(id) => {
            client
                .query_opt(
                    "select id from records where org_id = $1 and type_id = $2 and id = $3",
                    &[&org.id, &t.id, id],
                )
                .await?
        }
        Source::ExtId(ext) => {
            client
                .query_opt(
                    "select id from records where org_id = $1 and type_id = $2 and ext_id = $3",
                    &[&org.id, &t.id, ext],
                )
                .await?
        }
    };
    let Some(row) = row else {
        return Err(ApiError::not_found(format!(
            "no {} record with that identifier",
            t.name
        )));
    };
    let source_id: i64 = row.get(0);
    let type_ids: Vec<i32> = targets.iter().map(|t| t.id).collect();
    let rows = client
        .query(
            "select l.dst_type, r.id, r.ext_id, r.attributes, r.created_at, r.updated_at
               from record_links l
               join records r on r.org_id = l.org_id and r.type_id = l.dst_type and r.id = l.dst_id
              where l.org_id = $1 and l.src_type = $2 and l.src_id = $3 and l.dst_type = any($4)
              order by l.created_at desc, l.dst_id desc
              limit $5 offset $6",
            &[&org.id, &t.id, &source_id, &type_ids, &(PAGE + 1), &offset],
        )
        .await?;
    let has_more = rows.len() as i64 > PAGE;
    let by_id: HashMap<i32, &ObjectType> = targets.iter().map(|t| (t.id, *t)).collect();
    let items: Vec<Value> = rows
        .into_iter()
        .take(PAGE as usize)
        .filter_map(|r| {
            let other = by_id.get(&r.get::<_, i32>(0))?;
            Some(json!({
                "type": other.name,
                "object": {
                    "id": r.get::<_, i64>(1),
                    "ext_id": r.get::<_, Option<String>>(2),
                    "attributes": visible_attributes(other, r.get(3)),
                    "created_at": timestamp(r.get(4)),
                    "updated_at": timestamp(r.get(5)),
                },
            }))
        })
        .collect();
    let next = offset + items.len() as i64;
    Ok(Json(
        json!({"items": items, "has_more": has_more, "offset": next}),
    ))
}
