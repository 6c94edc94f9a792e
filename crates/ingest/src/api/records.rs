//! `GET /v3/objects/{object_type}/records`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::header::{HeaderMap, HeaderValue, LINK};
use objectsync_model::{ApiCode, ObjectType, ObjectTypeName, RecordId, TypeId};
use objectsync_store::processes::Order;
use objectsync_store::{GenericClient, Scope, links, object_types, records};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::cursor::Cursor;
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
    /// Only in answers to a request with `cursor` (an extension of Brevo's
    /// API): the `cursor` of the next page, `null` on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub(crate) next_cursor: Option<Option<String>>,
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
        ("page_num" = Option<i64>, Query, minimum = 1, maximum = 9_223_372_036_854_775i64, description = "From 1; required unless `cursor` is given (and then not allowed). Page 1 costs the same at any size; a later page costs a walk of the index over the (page_num - 1) × limit records before it (about 0.2 to 0.4 µs each on 2 cores): to read a whole type, use `cursor`"),
        ("cursor" = Option<String>, Query, description = "An extension of Brevo's API: empty for the first page, then the `next_cursor` of the page before (also in the `Link` header of every full page). Every page costs what the first does, however deep; records created meanwhile appear on a later page with `sort=asc`. The cursor carries its order: `sort` may be left out, and must not contradict it"),
        ("sort" = Option<SortOrder>, Query, description = "By id; default desc"),
        ("association" = Option<bool>, Query, description = "Include up to five linked records per associated type"),
    ),
    responses(
        (status = 200, body = RecordList, headers(
            ("Link" = String, description = "On a full page: `<…?cursor=…>; rel=\"next\"`, the next page as a cursor (an extension of Brevo's API)")
        )),
        (status = 404, description = "Unknown object type", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub(crate) async fn list(
    org: Org,
    State(state): State<AppState>,
    PathParts(name): PathParts<String>,
    params: Params,
) -> ApiResult<(HeaderMap, Json<RecordList>)> {
    let limit = params.int("limit", None, 1, 1000, ApiCode::OutOfRange)?;
    // Checked in the order the parameters are listed.
    let page = match params.get("cursor") {
        Some(_) if params.get("page_num").is_some() => {
            return Err(ApiError::invalid("send 'page_num' or 'cursor', not both"));
        }
        Some(_) => None,
        None => Some(params.int(
            "page_num",
            None,
            1,
            i64::MAX / 1000,
            ApiCode::InvalidParameter,
        )?),
    };
    let sort = params.get("sort").map(|_| params.sort()).transpose()?;
    let walk = match (page, params.get("cursor")) {
        (Some(page), _) => Walk::Page(page),
        (None, text) => Walk::After(Cursor::decode(text.unwrap_or_default(), sort)?),
    };
    let with_associations = params.flag("association")?;
    // A standby's, when configured: this read tolerates a little lag.
    let read = state.reads.get().await?;
    let client = &*read;
    let t = object_type(client, org, &name).await?;
    let scope = Scope::of(org.id, t.id);
    let (order, mut rows) = match walk {
        Walk::Page(page) => {
            let order = sort.unwrap_or(Order::Desc);
            let rows = records::page(client, scope, order, limit, (page - 1) * limit).await?;
            (order, rows)
        }
        // One more than asked: whether a page follows.
        Walk::After(c) => (
            c.order,
            records::page_after(client, scope, c.order, c.after, limit + 1).await?,
        ),
    };
    let more = match walk {
        Walk::Page(_) => rows.len() as i64 == limit,
        Walk::After(_) => rows.len() as i64 > limit,
    };
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = rows
        .last()
        .filter(|_| more)
        .map(|last| Cursor::after(order, last.id).encode());
    let count = records::count(client, scope).await?;
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
    let mut headers = HeaderMap::new();
    if let Some(cursor) = &next {
        let link = next_link(&name, limit, order, with_associations, cursor);
        if let Ok(value) = HeaderValue::from_str(&link) {
            headers.insert(LINK, value);
        }
    }
    let next_cursor = matches!(walk, Walk::After(_)).then_some(next);
    Ok((
        headers,
        Json(RecordList {
            count,
            records,
            next_cursor,
        }),
    ))
}

/// How a request names its page.
#[derive(Clone, Copy)]
enum Walk {
    /// `page_num`: skip the pages before it.
    Page(i64),
    /// `cursor`: start after the record it names.
    After(Cursor),
}

/// The `Link` header to the page after this one, as a cursor; the path and
/// the parameters need no escaping (a type name, numbers, base64url).
fn next_link(name: &str, limit: i64, order: Order, associations: bool, cursor: &str) -> String {
    let sort = match order {
        Order::Asc => "asc",
        Order::Desc => "desc",
    };
    let association = if associations {
        "&association=true"
    } else {
        ""
    };
    format!(
        "</v3/objects/{name}/records?limit={limit}&sort={sort}{association}&cursor={cursor}>; rel=\"next\""
    )
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
