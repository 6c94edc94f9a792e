//! The `object_types` and `object_associations` tables: the definitions
//! ingest checks batches against, the worker judges records against, and
//! the admin API writes.

use objectsync_model::{AttributeDef, ObjectType, ObjectTypeName, OrgId, TypeId};
use serde_json::Value;
use tokio_postgres::Row;

use crate::{GenericClient, StoreError, StoreResult};

const SELECT: &str = "
    select t.id, t.name, t.label, t.attributes,
           array(select o.name
                   from object_associations a
                   join object_types o
                     on o.org_id = a.org_id
                    and o.id = case when a.type_a = t.id then a.type_b else a.type_a end
                  where a.org_id = t.org_id
                    and (a.type_a = t.id or a.type_b = t.id)
                  order by o.name) as associations
      from object_types t
     where t.org_id = $1";

fn from_row(row: &Row) -> StoreResult<ObjectType> {
    let name: String = row.get("name");
    let corrupt = |reason: String| {
        StoreError::stored(format!(
            "definition of object type '{name}' is unreadable: {reason}"
        ))
    };
    let type_name = ObjectTypeName::parse(name.as_str()).map_err(|e| corrupt(e.to_string()))?;
    let attributes: Vec<AttributeDef> =
        serde_json::from_value(row.get("attributes")).map_err(|e| corrupt(e.to_string()))?;
    let associations = row
        .get::<_, Vec<String>>("associations")
        .into_iter()
        .map(ObjectTypeName::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(ObjectType::new(
        row.get("id"),
        type_name,
        row.get("label"),
        attributes,
        associations,
    ))
}

/// The object type `name` of `org`, if defined.
pub async fn find(
    c: &impl GenericClient,
    org: OrgId,
    name: &str,
) -> StoreResult<Option<ObjectType>> {
    let sql = format!("{SELECT} and t.name = $2");
    crate::query_opt(c, &sql, &[&org, &name])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Whether `org` defines `name`: all ingest needs to know per batch.
pub async fn exists(c: &impl GenericClient, org: OrgId, name: &str) -> StoreResult<bool> {
    Ok(crate::query_opt(
        c,
        "select 1 from object_types where org_id = $1 and name = $2",
        &[&org, &name],
    )
    .await?
    .is_some())
}

/// Every object type of `org`, by name.
pub async fn list(c: &impl GenericClient, org: OrgId) -> StoreResult<Vec<ObjectType>> {
    let sql = format!("{SELECT} order by t.name");
    crate::query(c, &sql, &[&org])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Creates or replaces the label and attributes of `name`; its id.
pub async fn upsert(
    tx: &impl GenericClient,
    org: OrgId,
    name: &ObjectTypeName,
    label: &str,
    attributes: &Value,
) -> StoreResult<TypeId> {
    Ok(crate::query_one(
        tx,
        "insert into object_types (org_id, name, label, attributes)
         values ($1, $2, $3, $4)
         on conflict (org_id, name) do update
            set label = excluded.label,
                attributes = excluded.attributes,
                updated_at = excluded.updated_at
         returning id",
        &[&org, &name.as_str(), &label, attributes],
    )
    .await?
    .get(0))
}

/// The ids of the types among `names` that `org` defines.
pub async fn ids(
    c: &impl GenericClient,
    org: OrgId,
    names: &[&str],
) -> StoreResult<Vec<(String, TypeId)>> {
    Ok(crate::query(
        c,
        "select name, id from object_types where org_id = $1 and name = any($2)",
        &[&org, &names],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// Makes `others` exactly the types `type_id` is associated with
/// (associations are symmetric: one row per pair, smaller id first).
pub async fn replace_associations(
    tx: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    others: &[TypeId],
) -> StoreResult<()> {
    crate::execute(
        tx,
        "delete from object_associations
          where org_id = $1 and (type_a = $2 or type_b = $2)
            and (case when type_a = $2 then type_b else type_a end) <> all($3)",
        &[&org, &type_id, &others],
    )
    .await?;
    crate::execute(
        tx,
        "insert into object_associations (org_id, type_a, type_b)
         select $1, least($2, x), greatest($2, x) from unnest($3::int[]) x
         on conflict do nothing",
        &[&org, &type_id, &others],
    )
    .await
    .map(drop)
}

/// The first type (by name) of `org` part of more than `cap` associations,
/// with its count.
pub async fn over_association_cap(
    c: &impl GenericClient,
    org: OrgId,
    cap: i64,
) -> StoreResult<Option<(String, i64)>> {
    Ok(crate::query_opt(
        c,
        "select t.name, count(*)
           from object_types t
           join object_associations a
             on a.org_id = t.org_id and (a.type_a = t.id or a.type_b = t.id)
          where t.org_id = $1
          group by t.name
         having count(*) > $2
          order by t.name
          limit 1",
        &[&org, &cap],
    )
    .await?
    .map(|r| (r.get(0), r.get(1))))
}
