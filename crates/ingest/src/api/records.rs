//! `GET /v3/objects/{object_type}/records`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use objectsync_infra::object_types;
use objectsync_model::{ApiCode, ObjectType};
use serde_json::{Map, Value, json};

use super::{Params, timestamp};
use crate::auth::Org;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The object type named in the path, or the contract's 400/404.
pub(super) async fn object_type(
    client: &impl tokio_postgres::GenericClient,
    org_id: i64,
    name: &str,
) -> ApiResult<ObjectType> {
    if objectsync_model::ObjectTypeName::parse(name).is_err() {
        return Err(ApiError::invalid(format!(
            "'{name}' is not a valid object type"
        )));
    }
    object_types::find(client, org_id, name)
        .await?
        .ok_or_else(|| ApiError::not_found("invalid object type"))
}

/// Stored attributes, less any the type no longer defines.
pub(super) fn visible_attributes(t: &ObjectType, stored: Value) -> Value {
    match stored {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| t.attribute(k).is_some())
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

pub(super) async fn list(
    org: Org,
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let limit = params.int("limit", None, 1, 1000, ApiCode::OutOfRange)?;
    let page = params.int(
        "page_num",
        None,
        1,
        i64::MAX / 1000,
        ApiCode::InvalidParameter,
    )?;
    let sort = params.sort()?;
    let with_associations = params.flag("association")?;
    let client = state.pool.get().await?;
    let t = object_type(&**client, org.id, &name).await?;
    let sql = format!(
        "select id, ext_id, attributes, created_at, updated_at
           from records
          where org_id = $1 and type_id = $2
          order by id {}
          limit $3 offset $4",
        sort.sql()
    );
    let rows = client
        .query(
            sql.as_str(),
            &[&org.id, &t.id, &limit, &((page - 1) * limit)],
        )
        .await?;
    let count: i64 = client
        .query_one(
            "select count(*) from records where org_id = $1 and type_id = $2",
            &[&org.id, &t.id],
        )
        .await?
        .get(0);
    let ids: Vec<i64> = rows.iter().map(|r| r.get("id")).collect();
    let mut linked = if with_associations {
        linked_records(&client, org.id, &t, &ids).await?
    } else {
        HashMap::new()
    };
    let records: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let mut identifiers = json!({"id": r.get::<_, i64>("id")});
            if let Some(ext) = r.get::<_, Option<String>>("ext_id") {
                identifiers["ext_id"] = Value::String(ext);
            }
            let id: i64 = r.get("id");
            let mut record = json!({
                "identifiers": identifiers,
                "attributes": visible_attributes(&t, r.get("attributes")),
                "createdAt": timestamp(r.get("created_at")),
                "updatedAt": timestamp(r.get("updated_at")),
            });
            if with_associations {
                record["associations"] = Value::Array(linked.remove(&id).unwrap_or_default());
            }
            record
        })
        .collect();
    Ok(Json(json!({"count": count, "records": records})))
}

/// Linked records shown per associated type when listing, as Brevo does.
const LINKS_SHOWN: usize = 5;

/// For each of `ids`, its associations: per associated type (by name), the
/// ids of up to five linked records, newest link first.
async fn linked_records(
    client: &tokio_postgres::Client,
    org_id: i64,
    t: &ObjectType,
    ids: &[i64],
) -> ApiResult<HashMap<i64, Vec<Value>>> {
    let names: HashMap<i32, String> = object_types::list(client, org_id)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name.to_string()))
        .collect();
    let rows = client
        .query(
            "select src_id, dst_type, dst_id
               from record_links
              where org_id = $1 and src_type = $2 and src_id = any($3)
              order by src_id, dst_type, created_at desc, dst_id desc",
            &[&org_id, &t.id, &ids],
        )
        .await?;
    // src → type name → linked ids, in link order.
    let mut grouped: HashMap<i64, Vec<(String, Vec<i64>)>> = HashMap::new();
    for r in rows {
        let (src, dst_type, dst): (i64, i32, i64) = (r.get(0), r.get(1), r.get(2));
        let Some(name) = names.get(&dst_type) else {
            continue;
        };
        let per_src = grouped.entry(src).or_default();
        match per_src.last_mut() {
            Some((n, linked)) if n == name => linked.push(dst),
            _ => per_src.push((name.clone(), vec![dst])),
        }
    }
    Ok(grouped
        .into_iter()
        .map(|(src, types)| {
            let mut types: Vec<Value> = types
                .into_iter()
                .map(|(name, linked)| {
                    let records: Vec<Value> = linked
                        .into_iter()
                        .take(LINKS_SHOWN)
                        .map(|id| json!({"identifiers": {"id": id}}))
                        .collect();
                    json!({"object_type": name, "records": records})
                })
                .collect();
            types.sort_by(|a, b| a["object_type"].as_str().cmp(&b["object_type"].as_str()));
            (src, types)
        })
        .collect())
}
