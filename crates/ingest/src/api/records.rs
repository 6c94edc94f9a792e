//! `GET /v3/objects/{object_type}/records`.

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
    let limit = params.int("limit", None, 1, 1000, ApiCode::InvalidParameter)?;
    let page = params.int(
        "page_num",
        None,
        1,
        i64::MAX / 1000,
        ApiCode::InvalidParameter,
    )?;
    let sort = params.sort()?;
    let _associations = params.flag("association")?;
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
    let records: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let mut identifiers = json!({"id": r.get::<_, i64>("id")});
            if let Some(ext) = r.get::<_, Option<String>>("ext_id") {
                identifiers["ext_id"] = Value::String(ext);
            }
            json!({
                "identifiers": identifiers,
                "attributes": visible_attributes(&t, r.get("attributes")),
                "createdAt": timestamp(r.get("created_at")),
                "updatedAt": timestamp(r.get("updated_at")),
            })
        })
        .collect();
    Ok(Json(json!({"count": count, "records": records})))
}
