//! Administration against the database, shared by the admin HTTP API and
//! the `objectsync-ingest admin` CLI: the rules of organizations and
//! definitions, over the statements of `objectsync_store`.

use objectsync_model::limits::{MAX_ORG_NAME_CHARS, MAX_TYPE_ASSOCIATIONS};
use objectsync_model::{DefinitionInput, FieldError, ObjectType, ObjectTypeName, OrgId, TypeId};
use objectsync_store::{GenericClient, StoreError, object_types, organizations};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{generate_key, hash_key, key_hint};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the current state (a process already ended).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tokio_postgres::Error> for AdminError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for AdminError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Store(e.into())
    }
}

/// A new organization and its first API key, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedOrg {
    pub id: OrgId,
    pub name: String,
    pub custom_objects_enabled: bool,
    /// Shown once; only its hash is stored.
    pub api_key: String,
}

/// A new API key, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedKey {
    pub api_key: String,
}

/// A stored object type definition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Definition {
    pub object_type: String,
    pub label: String,
    pub attributes: Vec<objectsync_model::AttributeDef>,
    /// The types its records may be linked to (symmetric).
    pub associations: Vec<String>,
}

impl From<&ObjectType> for Definition {
    fn from(t: &ObjectType) -> Self {
        Self {
            object_type: t.name.to_string(),
            label: t.label.clone(),
            attributes: t.attributes.clone(),
            associations: t.associations.iter().map(ToString::to_string).collect(),
        }
    }
}

fn check_org_name(name: &str) -> Result<&str, FieldError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(FieldError::new("name", "must not be empty"));
    }
    if name.contains('\0') {
        return Err(FieldError::new(
            "name",
            "must not contain the NUL character",
        ));
    }
    if name.chars().count() > MAX_ORG_NAME_CHARS {
        return Err(FieldError::new(
            "name",
            format!("must be at most {MAX_ORG_NAME_CHARS} characters long"),
        ));
    }
    Ok(name)
}

pub async fn create_org(
    client: &mut deadpool_postgres::Client,
    name: &str,
    custom_objects_enabled: bool,
) -> Result<CreatedOrg, AdminError> {
    let name = check_org_name(name)?;
    let tx = client.transaction().await?;
    let id = organizations::insert(&tx, name, custom_objects_enabled).await?;
    let api_key = generate_key();
    organizations::add_key(&tx, id, &hash_key(&api_key), key_hint(&api_key)).await?;
    tx.commit().await?;
    Ok(CreatedOrg {
        id,
        name: name.to_owned(),
        custom_objects_enabled,
        api_key,
    })
}

pub(crate) fn no_such_org(org: OrgId) -> AdminError {
    AdminError::NotFound(format!("organization {org} does not exist"))
}

/// Adds an API key to an organization and returns it (shown once).
pub async fn create_key(client: &impl GenericClient, org: OrgId) -> Result<CreatedKey, AdminError> {
    if !organizations::exists(client, org).await? {
        return Err(no_such_org(org));
    }
    let api_key = generate_key();
    organizations::add_key(client, org, &hash_key(&api_key), key_hint(&api_key)).await?;
    Ok(CreatedKey { api_key })
}

/// Creates or replaces the definition of `name`. Associations are replaced
/// only when the input lists them; the organization row is locked so that
/// concurrent changes cannot together exceed the association cap.
pub async fn put_object_type(
    client: &mut deadpool_postgres::Client,
    org: OrgId,
    name: &str,
    input: DefinitionInput,
) -> Result<ObjectType, AdminError> {
    let name = ObjectTypeName::parse(name)
        .map_err(|e| FieldError::new("object_type", format!("'{name}' {e}")))?;
    let tx = client.transaction().await?;
    if !organizations::lock(&tx, org).await? {
        return Err(no_such_org(org));
    }
    let attributes = serde_json::to_value(&input.attributes)
        .map_err(|e| FieldError::new("attributes", e.to_string()))?;
    let type_id = object_types::upsert(&tx, org, &name, &input.label, &attributes).await?;
    if let Some(associations) = &input.associations {
        replace_associations(&tx, org, type_id, associations).await?;
    }
    let stored = object_types::find(&tx, org, name.as_str())
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("object type '{name}' vanished")))?;
    tx.commit().await?;
    Ok(stored)
}

async fn replace_associations(
    tx: &impl GenericClient,
    org: OrgId,
    type_id: TypeId,
    associations: &[ObjectTypeName],
) -> Result<(), AdminError> {
    let names: Vec<&str> = associations.iter().map(ObjectTypeName::as_str).collect();
    let known = object_types::ids(tx, org, &names).await?;
    let mut ids = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let Some((_, id)) = known.iter().find(|(n, _)| n == name) else {
            return Err(FieldError::new(
                format!("associations[{i}]"),
                format!("object type '{name}' does not exist; define it first"),
            )
            .into());
        };
        ids.push(*id);
    }
    object_types::replace_associations(tx, org, type_id, &ids).await?;
    if let Some((name, count)) =
        object_types::over_association_cap(tx, org, MAX_TYPE_ASSOCIATIONS as i64).await?
    {
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
    client: &impl GenericClient,
    org: OrgId,
) -> Result<Vec<ObjectType>, AdminError> {
    if !organizations::exists(client, org).await? {
        return Err(no_such_org(org));
    }
    Ok(object_types::list(client, org).await?)
}

/// An organization's own limits and the limits in effect (its own where set,
/// else the defaults).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimitsOut {
    /// What is set for this organization; `null` takes the default.
    #[schema(value_type = Object)]
    pub own: objectsync_store::organizations::Limits,
    /// What applies.
    pub effective: EffectiveLimits,
}

/// The limits that apply to an organization; a rate of 0 is no limit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EffectiveLimits {
    pub writes_per_second: f64,
    pub writes_burst: f64,
    pub reads_per_second: f64,
    pub reads_burst: f64,
    pub max_open_processes: i64,
}

/// Checks limits sent by an operator against the ranges of
/// [`LimitSettings`](objectsync_infra::settings::LimitSettings), naming the
/// first field out of range.
pub fn check_limits(l: &objectsync_store::organizations::Limits) -> Result<(), FieldError> {
    use objectsync_infra::settings::LimitSettings as L;
    let field = |e: objectsync_infra::settings::InvalidLimit| FieldError::new(e.field, e.expected);
    let rates = [
        ("writes_per_second", l.writes_per_second),
        ("reads_per_second", l.reads_per_second),
    ];
    for (name, v) in rates {
        v.map_or(Ok(()), |v| L::check_rate(name, v))
            .map_err(field)?;
    }
    let bursts = [
        ("writes_burst", l.writes_burst),
        ("reads_burst", l.reads_burst),
    ];
    for (name, v) in bursts {
        v.map_or(Ok(()), |v| L::check_burst(name, v))
            .map_err(field)?;
    }
    l.max_open_processes
        .map_or(Ok(()), |v| {
            L::check_max_open_processes("max_open_processes", v.into())
        })
        .map_err(field)
}

/// What applies to an organization with `own` limits.
pub fn effective_limits(
    defaults: &objectsync_infra::settings::LimitSettings,
    own: &objectsync_store::organizations::Limits,
) -> EffectiveLimits {
    let e = crate::limits::Effective::of(defaults, own);
    EffectiveLimits {
        writes_per_second: e.writes.per_second,
        writes_burst: e.writes.burst,
        reads_per_second: e.reads.per_second,
        reads_burst: e.reads.burst,
        max_open_processes: e.max_open_processes,
    }
}

/// Replaces an organization's limits (`None` fields take the default).
pub async fn set_limits(
    client: &impl GenericClient,
    defaults: &objectsync_infra::settings::LimitSettings,
    org: OrgId,
    own: objectsync_store::organizations::Limits,
) -> Result<LimitsOut, AdminError> {
    check_limits(&own)?;
    if !organizations::set_limits(client, org, &own).await? {
        return Err(no_such_org(org));
    }
    Ok(LimitsOut {
        effective: effective_limits(defaults, &own),
        own,
    })
}

/// An organization's limits.
pub async fn get_limits(
    client: &impl GenericClient,
    defaults: &objectsync_infra::settings::LimitSettings,
    org: OrgId,
) -> Result<LimitsOut, AdminError> {
    let own = organizations::limits(client, org)
        .await?
        .ok_or_else(|| no_such_org(org))?;
    Ok(LimitsOut {
        effective: effective_limits(defaults, &own),
        own,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_names_are_checked() {
        assert_eq!(check_org_name("  Acme ").unwrap(), "Acme");
        assert!(check_org_name(" ").is_err());
        assert!(check_org_name("a\0b").is_err());
        assert!(check_org_name(&"n".repeat(256)).is_err());
        assert!(check_org_name(&"é".repeat(255)).is_ok());
    }
}
