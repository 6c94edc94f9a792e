//! `GET /v3/objects/{object_type}/records`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use objectsync_model::{ApiCode, ObjectType, ObjectTypeName, RecordId, TypeId};
use objectsync_store::{GenericClient, Scope, links, object_types, records};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::schema::StoredIdentifiers;
use crate::auth::Org;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::web::{Params, PathParts, timestamp};

/// `asc` or `desc`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum SortOrder {
    Asc,
    Desc,
}

/// A linked record, by id.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LinkedRef {
    pub(crate) identifiers: LinkedId,
}

/// The id of a linked record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LinkedId {
    pub(crate) id: RecordId,
}

/// A record's links to one associated type: up to five, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssociationOut {
    pub(crate) object_type: String,
    pub(crate) records: Vec<LinkedRef>,
}

/// A record as stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordOut {
    pub(crate) identifiers: StoredIdentifiers,
    /// The attributes the type defines that have a value.
    #[schema(value_type = Object)]
    pub(crate) attributes: Value,
    /// With `association=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) associations: Option<Vec<AssociationOut>>,
    #[serde(rename = "createdAt")]
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    #[serde(rename = "updatedAt")]
    #[schema(format = DateTime)]
    pub(crate) updated_at: String,
}

/// A page of records and how many the type holds.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordList {
    pub(crate) count: i64,
    pub(crate) records: Vec<RecordOut>,
}

/// The object type named in the path, or the contract's 400/404.
pub(crate) async fn object_type(
    client: &impl GenericClient,
    org: crate::auth::Org,
    name: &str,
) -> ApiResult<ObjectType> {
    if ObjectTypeName::parse(name).is_err() {
        return Err(ApiError::invalid(format!(
            "'{name}' is not a valid object type"
        )));
    }
    object_types::find(client, org.id, name)
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

#[utoipa::path(
    get,
    path = "/v3/objects/{object_type}/records",
    operation_id = "listRecords",
    tag = "records",
    params(
        ("object_type" = String, Path, pattern = "^[a-z][a-z0-9_]{0,31}$"),
        ("limit" = i64, Query, minimum = 1, maximum = 1000),
        ("page_num" = i64, Query, minimum = 1, maximum = 9_223_372_036_854_775i64, description = "From 1. Page 1 costs the same at any size; a later page costs a walk of the index over the (page_num - 1) × limit records before it (about 0.2 µs each on 2 cores): to read a whole type, use sort=asc and keep page_num × limit under about a million"),
        ("sort" = Option<SortOrder>, Query, description = "By id; default desc"),
        ("association" = Option<bool>, Query, description = "Include up to five linked records per associated type"),
    ),
    responses(
        (status = 200, body = RecordList),
        (status = 404, description = "Unknown object type", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub(crate) async fn list(
    org: Org,
    State(state): State<AppState>,
    PathParts(name): PathParts<String>,
    params: Params,
) -> ApiResult<Json<RecordList>> {
    let limit = params.int("limit", None, 1, 1000, ApiCode::OutOfRange)?;
    let page = params.int(
        "page_num",
        None,
        1,
        i64::MAX / 1000,
        ApiCode::InvalidParameter,
    )?;
    let order = params.sort()?;
    let with_associations = params.flag("association")?;
    // A standby's, when configured: this read tolerates a little lag.
    let read = state.reads.get().await?;
    let client = &*read;
    let t = object_type(client, org, &name).await?;
    let rows = records::page(
        client,
        Scope::of(org.id, t.id),
        order,
        limit,
        (page - 1) * limit,
    )
    .await?;
    let count = records::count(client, Scope::of(org.id, t.id)).await?;
    let mut linked = if with_associations {
        let ids: Vec<RecordId> = rows.iter().map(|r| r.id).collect();
        linked_records(client, org, &t, &ids).await?
    } else {
        HashMap::new()
    };
    let records = rows
        .into_iter()
        .map(|r| RecordOut {
            associations: with_associations.then(|| linked.remove(&r.id).unwrap_or_default()),
            identifiers: StoredIdentifiers {
                id: r.id,
                ext_id: r.ext_id,
            },
            attributes: visible_attributes(&t, r.attributes),
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
        })
        .collect();
    Ok(Json(RecordList { count, records }))
}

/// Linked records shown per associated type when listing, as Brevo does.
const LINKS_SHOWN: usize = 5;

/// For each of `ids`, its associations: per associated type (by name), the
/// ids of up to five linked records, newest link first.
async fn linked_records(
    client: &impl GenericClient,
    org: Org,
    t: &ObjectType,
    ids: &[RecordId],
) -> ApiResult<HashMap<RecordId, Vec<AssociationOut>>> {
    let names: HashMap<TypeId, String> = object_types::list(client, org.id)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name.to_string()))
        .collect();
    let mut grouped: HashMap<RecordId, Vec<AssociationOut>> = HashMap::new();
    for link in links::for_listing(client, Scope::of(org.id, t.id), ids).await? {
        let Some(name) = names.get(&link.dst_type) else {
            continue;
        };
        let per_src = grouped.entry(link.src).or_default();
        let entry = match per_src.last_mut() {
            Some(a) if a.object_type == *name => a,
            _ => {
                per_src.push(AssociationOut {
                    object_type: name.clone(),
                    records: Vec::new(),
                });
                per_src.last_mut().expect("just pushed")
            }
        };
        if entry.records.len() < LINKS_SHOWN {
            entry.records.push(LinkedRef {
                identifiers: LinkedId { id: link.dst },
            });
        }
    }
    for types in grouped.values_mut() {
        types.sort_by(|a, b| a.object_type.cmp(&b.object_type));
    }
    Ok(grouped)
}
