//! `GET /v3/objects/{object_type}/associated-records`: the records linked to
//! one record, newest link first, 20 a page.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use objectsync_model::{ApiCode, ObjectType, ObjectTypeName, RecordId, TypeId};
use objectsync_store::records::{self, Keys};
use objectsync_store::{Scope, links, object_types};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::records::{object_type, visible_attributes};
use crate::auth::Org;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::web::{Params, PathParts, timestamp};

const PAGE: i64 = 20;
const MAX_TYPES: usize = 5;

/// A linked record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssociatedObject {
    pub(crate) id: RecordId,
    pub(crate) ext_id: Option<String>,
    #[schema(value_type = Object)]
    pub(crate) attributes: Value,
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    #[schema(format = DateTime)]
    pub(crate) updated_at: String,
}

/// A linked record and its type.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssociatedItem {
    #[serde(rename = "type")]
    pub(crate) object_type: String,
    pub(crate) object: AssociatedObject,
}

/// A page of linked records.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssociatedPage {
    pub(crate) items: Vec<AssociatedItem>,
    pub(crate) has_more: bool,
    /// The offset that was requested (ask for `offset + 20` next).
    pub(crate) offset: i64,
}

/// The `id` or `ext_id` parameter: exactly one of them.
enum Source {
    Id(RecordId),
    ExtId(String),
}

fn source(params: &Params) -> ApiResult<Source> {
    match (params.get("id"), params.get("ext_id")) {
        (Some(_), Some(_)) => Err(ApiError::invalid("give 'id' or 'ext_id', not both")),
        (None, None) => Err(ApiError::new(
            ApiCode::MissingParameter,
            "query parameter 'id' or 'ext_id' is required",
        )),
        (Some(_), None) => Ok(Source::Id(RecordId(params.int(
            "id",
            None,
            1,
            i64::MAX,
            ApiCode::InvalidParameter,
        )?))),
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

#[utoipa::path(
    get,
    path = "/v3/objects/{object_type}/associated-records",
    operation_id = "listAssociatedRecords",
    tag = "records",
    params(
        ("object_type" = String, Path, pattern = "^[a-z][a-z0-9_]{0,31}$"),
        ("record" = super::schema::TargetIdentifiers, Query, style = Form, explode,
         description = "The record whose links to list: exactly one of `id=` and `ext_id=`"),
        ("type" = Option<Vec<ObjectTypeName>>, Query, style = Form, explode,
         description = "Associated types to list (repeatable, at most 5); default all"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "Default 0"),
    ),
    responses(
        (status = 200, body = AssociatedPage),
        (status = 404, description = "Unknown object type or record", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub(crate) async fn list(
    org: Org,
    State(state): State<AppState>,
    PathParts(name): PathParts<String>,
    params: Params,
) -> ApiResult<Json<AssociatedPage>> {
    let wanted = source(&params)?;
    let offset = params.int("offset", Some(0), 0, i64::MAX, ApiCode::InvalidParameter)?;
    // A standby's, when configured: this read tolerates a little lag.
    let read = state.reads.get().await?;
    let client = &*read;
    let t = object_type(client, org, &name).await?;
    let all: HashMap<String, ObjectType> = object_types::list(client, org.id)
        .await?
        .into_iter()
        .map(|t| (t.name.to_string(), t))
        .collect();
    let targets = types(&params, &t, &all)?;
    let found = match &wanted {
        Source::Id(id) => records::find(client, Scope::of(org.id, t.id), Keys::Ids(&[*id])).await?,
        Source::ExtId(ext) => {
            records::find(
                client,
                Scope::of(org.id, t.id),
                Keys::ExtIds(&[ext.as_str()]),
            )
            .await?
        }
    };
    let Some(source) = found.first() else {
        return Err(ApiError::not_found(format!(
            "no {} record with that identifier",
            t.name
        )));
    };
    let type_ids: Vec<TypeId> = targets.iter().map(|t| t.id).collect();
    let rows = links::linked_page(
        client,
        Scope::of(org.id, t.id),
        source.id,
        &type_ids,
        PAGE + 1,
        offset,
    )
    .await?;
    let has_more = rows.len() as i64 > PAGE;
    let by_id: HashMap<TypeId, &ObjectType> = targets.iter().map(|t| (t.id, *t)).collect();
    let items = rows
        .into_iter()
        .take(PAGE as usize)
        .filter_map(|r| {
            let other = by_id.get(&r.type_id)?;
            Some(AssociatedItem {
                object_type: other.name.to_string(),
                object: AssociatedObject {
                    id: r.id,
                    ext_id: r.ext_id,
                    attributes: visible_attributes(other, r.attributes),
                    created_at: timestamp(r.created_at),
                    updated_at: timestamp(r.updated_at),
                },
            })
        })
        .collect();
    Ok(Json(AssociatedPage {
        items,
        has_more,
        offset,
    }))
}
