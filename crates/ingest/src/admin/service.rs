//! Administration against the database, shared by the admin HTTP API and
//! the `objectsync-ingest admin` CLI.

use objectsync_infra::object_types::{self, ObjectTypeError};
use objectsync_model::limits::{MAX_ORG_NAME_CHARS, MAX_TYPE_ASSOCIATIONS};
use objectsync_model::{DefinitionInput, FieldError, ObjectType, ObjectTypeName};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_postgres::{Client, GenericClient};

use crate::auth::{generate_key, hash_key};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Stored(ObjectTypeError),
}

impl From<ObjectTypeError> for AdminError {
    fn from(e: ObjectTypeError) -> Self {
        match e {
            ObjectTypeError::Postgres(e) => Self::Postgres(e),
            other => Self::Stored(other),
        }
    }
}

/// A new organization and its first API key, shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedOrg {
    pub id: i64,
    pub name: String,
    pub custom_objects_enabled: bool,
    pub api_key: String,
}

pub async fn create_org(
    client: &mut Client,
    name: &str,
    custom_objects_enabled: bool,
) -> Result<CreatedOrg, AdminError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(FieldError::new("name", "must not be empty").into());
    }
    if name.contains('\0') {
        return Err(FieldError::new("name", "must not contain the NUL character").into());
    }
    if name.chars().count() > MAX_ORG_NAME_CHARS {
        return Err(FieldError::new(
            "name",
            format!("must be at most {MAX_ORG_NAME_CHARS} characters long"),
        )
        .into());
    }
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "insert into organizations (name, custom_objects_enabled) values ($1, $2) returning id",
            &[&name, &custom_objects_enabled],
        )
        .await?;
    let id: i64 = row.get(0);
    let api_key = insert_key(&tx, id).await?;
    tx.commit().await?;
    Ok(CreatedOrg {
        id,
        name: name.to_owned(),
        custom_objects_enabled,
        api_key,
    })
}

async fn insert_key(client: &impl GenericClient, org_id: i64) -> Result<String, AdminError> {
    let key = generate_key();
    client
        .execute(
            "insert into api_keys (org_id, key_hash) values ($1, $2)",
            &[&org_id, &hash_key(&key)],
        )
        .await?;
    Ok(key)
}

async fn require_org(
    client: &impl GenericClient,
    org_id: i64,
    lock: bool,
) -> Result<(), AdminError> {
    let sql = if lock {
        "select 1 from organizations where id = $1 for update"
    } else {
        "select 1 from organizations where id = $1"
    };
    match client.query_opt(sql, &[&org_id]).await? {
        Some(_) => Ok(()),
        None => Err(AdminError::NotFound(format!(
            "organization {org_id} does not exist"
        ))),
    }
}

/// Adds an API key to an organization and returns it (shown once).
pub async fn create_key(client: &Client, org_id: i64) -> Result<String, AdminError> {
    require_org(client, org_id, false).await?;
    insert_key(client, org_id).await
}

/// Creates or replaces the definition of `name`. Associations are replaced
/// only when the input lists them; the organization row is locked so that
/// concurrent changes cannot together exceed the association cap.
pub async fn put_object_type(
    client: &mut Client,
    org_id: i64,
    name: &str,
    input: DefinitionInput,
) -> Result<ObjectType, AdminError> {
    let name = ObjectTypeName::parse(name)
        .map_err(|e| FieldError::new("object_type", format!("'{name}' {e}")))?;
    let tx = client.transaction().await?;
    require_org(&tx, org_id, true).await?;
    let attributes = serde_json::to_value(&input.attributes)
        .map_err(|e| FieldError::new("attributes", e.to_string()))?;
    let row = tx
        .query_one(
            "insert into object_types (org_id, name, label, attributes)
             values ($1, $2, $3, $4)
             on conflict (org_id, name) do update
                set label = excluded.label,
                    attributes = excluded.attributes,
                    updated_at = now()
             returning id",
            &[&org_id, &name.as_str(), &input.label, &attributes],
        )
        .await?;
    let type_id: i32 = row.get(0);
    if let Some(associations) = &input.associations {
        replace_associations(&tx, org_id, type_id, associations).await?;
    }
    let stored = object_types::find(&tx, org_id, name.as_str())
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("object type '{name}' vanished")))?;
    tx.commit().await?;
    Ok(stored)
}

async fn replace_associations(
    tx: &impl GenericClient,
    org_id: i64,
    type_id: i32,
    associations: &[ObjectTypeName],
) -> Result<(), AdminError> {
    let names: Vec<&str> = associations.iter().map(ObjectTypeName::as_str).collect();
    let rows = tx
        .query(
            "select name, id from object_types where org_id = $1 and name = any($2)",
            &[&org_id, &names],
        )
        .await?;
    let mut ids = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let Some(row) = rows.iter().find(|r| r.get::<_, &str>(0) == *name) else {
            return Err(FieldError::new(
                format!("associations[{i}]"),
                format!("object type '{name}' does not exist; define it first"),
            )
            .into());
        };
        ids.push(row.get::<_, i32>(1));
    }
    tx.execute(
        "delete from object_associations
          where org_id = $1 and (type_a = $2 or type_b = $2)
            and (case when type_a = $2 then type_b else type_a end) <> all($3)",
        &[&org_id, &type_id, &ids],
    )
    .await?;
    tx.execute(
        "insert into object_associations (org_id, type_a, type_b)
         select $1, least($2, x), greatest($2, x) from unnest($3::int[]) x
         on conflict do nothing",
        &[&org_id, &type_id, &ids],
    )
    .await?;
    let over = tx
        .query_opt(
            "select t.name, count(*)
               from object_types t
               join object_associations a
                 on a.org_id = t.org_id and (a.type_a = t.id or a.type_b = t.id)
              where t.org_id = $1
              group by t.name
             having count(*) > $2
              order by t.name
              limit 1",
            &[&org_id, &(MAX_TYPE_ASSOCIATIONS as i64)],
        )
        .await?;
    if let Some(row) = over {
        let (name, count): (String, i64) = (row.get(0), row.get(1));
        return Err(FieldError::new(
            "associations",
            format!(
                "object type '{name}' would be part of {count} associations; at most {MAX_TYPE_ASSOCIATIONS} are allowed"
            ),
        )
        .into());
    }
    Ok(())
}

/// Every object type of an organization.
pub async fn list_object_types(
    client: &Client,
    org_id: i64,
) -> Result<Vec<ObjectType>, AdminError> {
    require_org(client, org_id, false).await?;
    Ok(object_types::list(client, org_id).await?)
}

/// The JSON form of a stored definition, as the admin API returns it.
pub fn definition_json(t: &ObjectType) -> Value {
    json!({
        "object_type": t.name,
        "label": t.label,
        "attributes": t.attributes,
        "associations": t.associations,
    })
}
