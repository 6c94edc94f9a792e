//! Reading object type definitions, which ingest (does the type exist?) and
//! the worker (what do its attributes accept?) both need.

use objectsync_model::{AttributeDef, ObjectType, ObjectTypeName};
use tokio_postgres::{GenericClient, Row};

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

#[derive(Debug, thiserror::Error)]
pub enum ObjectTypeError {
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error("stored definition of object type '{name}' is unreadable: {reason}")]
    Corrupt { name: String, reason: String },
}

fn from_row(row: &Row) -> Result<ObjectType, ObjectTypeError> {
    let name: String = row.get("name");
    let corrupt = |reason: String| ObjectTypeError::Corrupt {
        name: name.clone(),
        reason,
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

/// The object type `name` of organization `org_id`, if defined.
pub async fn find(
    client: &impl GenericClient,
    org_id: i64,
    name: &str,
) -> Result<Option<ObjectType>, ObjectTypeError> {
    let sql = format!("{SELECT} and t.name = $2");
    let row = client.query_opt(sql.as_str(), &[&org_id, &name]).await?;
    row.as_ref().map(from_row).transpose()
}

/// Whether organization `org_id` defines `name`: all ingest needs to know
/// per batch, without loading the definition.
pub async fn exists(
    client: &impl GenericClient,
    org_id: i64,
    name: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "select 1 from object_types where org_id = $1 and name = $2",
            &[&org_id, &name],
        )
        .await?;
    Ok(row.is_some())
}

/// Every object type of an organization, by name.
pub async fn list(
    client: &impl GenericClient,
    org_id: i64,
) -> Result<Vec<ObjectType>, ObjectTypeError> {
    let sql = format!("{SELECT} order by t.name");
    let rows = client.query(sql.as_str(), &[&org_id]).await?;
    rows.iter().map(from_row).collect()
}
