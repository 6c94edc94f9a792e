//! The `organizations` and `api_keys` tables. Keys are stored only as their
//! SHA-256 (see ingest's `auth`), so authenticating is one indexed lookup.

use objectsync_model::OrgId;

use crate::{GenericClient, StoreResult};

/// A new organization's id.
pub async fn insert(
    tx: &impl GenericClient,
    name: &str,
    custom_objects_enabled: bool,
) -> StoreResult<OrgId> {
    Ok(crate::query_one(
        tx,
        "insert into organizations (name, custom_objects_enabled) values ($1, $2) returning id",
        &[&name, &custom_objects_enabled],
    )
    .await?
    .get(0))
}

/// Stores a key's hash for `org`.
pub async fn add_key(c: &impl GenericClient, org: OrgId, key_hash: &[u8]) -> StoreResult<()> {
    crate::execute(
        c,
        "insert into api_keys (org_id, key_hash) values ($1, $2)",
        &[&org, &key_hash],
    )
    .await
    .map(drop)
}

/// Whether `org` exists.
pub async fn exists(c: &impl GenericClient, org: OrgId) -> StoreResult<bool> {
    Ok(
        crate::query_opt(c, "select 1 from organizations where id = $1", &[&org])
            .await?
            .is_some(),
    )
}

/// Locks `org` for the rest of the transaction (serializes definition
/// changes, so that together they cannot exceed the association cap);
/// whether it exists.
pub async fn lock(tx: &impl GenericClient, org: OrgId) -> StoreResult<bool> {
    Ok(crate::query_opt(
        tx,
        "select 1 from organizations where id = $1 for update",
        &[&org],
    )
    .await?
    .is_some())
}

/// The organization a key belongs to, and whether it may use custom objects.
pub async fn by_key(c: &impl GenericClient, key_hash: &[u8]) -> StoreResult<Option<(OrgId, bool)>> {
    Ok(crate::query_opt(
        c,
        "select o.id, o.custom_objects_enabled
           from api_keys k
           join organizations o on o.id = k.org_id
          where k.key_hash = $1",
        &[&key_hash],
    )
    .await?
    .map(|r| (r.get(0), r.get(1))))
}
