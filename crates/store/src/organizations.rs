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

/// Stores a key's hash for `org`, with its last characters (`hint`) so that
/// operators can tell keys apart.
pub async fn add_key(
    c: &impl GenericClient,
    org: OrgId,
    key_hash: &[u8],
    hint: &str,
) -> StoreResult<()> {
    crate::execute(
        c,
        "insert into api_keys (org_id, key_hash, hint) values ($1, $2, $3)",
        &[&org, &key_hash, &hint],
    )
    .await
    .map(drop)
}

/// One of an organization's keys, as operators see it (never the key).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    /// The key's SHA-256: names it in the console without revealing it.
    pub key_hash: Vec<u8>,
    /// Its last characters, for keys made since hints are kept.
    pub hint: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it last authenticated a request, to the minute (see
    /// [`mark_used`]); `None` if never since that was recorded.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every key of `org`, newest first, revoked ones included.
pub async fn keys(c: &impl GenericClient, org: OrgId) -> StoreResult<Vec<KeyInfo>> {
    Ok(crate::query(
        c,
        "select key_hash, hint, created_at, revoked_at, last_used_at from api_keys
          where org_id = $1 order by created_at desc",
        &[&org],
    )
    .await?
    .iter()
    .map(|r| KeyInfo {
        key_hash: r.get(0),
        hint: r.get(1),
        created_at: r.get(2),
        revoked_at: r.get(3),
        last_used_at: r.get(4),
    })
    .collect())
}

/// Records that the key `key_hash` authenticated a request now, unless a
/// use less than a minute ago is recorded already: a write a minute at
/// most per key, however many requests and replicas.
pub async fn mark_used(c: &impl GenericClient, key_hash: &[u8]) -> StoreResult<()> {
    crate::execute(
        c,
        "update api_keys set last_used_at = now()
          where key_hash = $1
            and (last_used_at is null or last_used_at < now() - interval '1 minute')",
        &[&key_hash],
    )
    .await?;
    Ok(())
}

/// Revokes a key of `org`: from the next request on, on every replica, it
/// authenticates nothing. Whether a live key was revoked.
pub async fn revoke_key(c: &impl GenericClient, org: OrgId, key_hash: &[u8]) -> StoreResult<bool> {
    Ok(crate::execute(
        c,
        "update api_keys set revoked_at = now()
          where org_id = $1 and key_hash = $2 and revoked_at is null",
        &[&org, &key_hash],
    )
    .await?
        == 1)
}

/// An organization, as listed to operators.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgInfo {
    pub id: OrgId,
    pub name: String,
    pub custom_objects_enabled: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Organizations by id, `limit` of them after `after` (keyset paging).
pub async fn list(c: &impl GenericClient, after: OrgId, limit: i64) -> StoreResult<Vec<OrgInfo>> {
    Ok(crate::query(
        c,
        "select id, name, custom_objects_enabled, created_at from organizations
          where id > $1 order by id limit $2",
        &[&after, &limit],
    )
    .await?
    .iter()
    .map(|r| OrgInfo {
        id: r.get(0),
        name: r.get(1),
        custom_objects_enabled: r.get(2),
        created_at: r.get(3),
    })
    .collect())
}

/// Organization `org`, if it exists.
pub async fn get(c: &impl GenericClient, org: OrgId) -> StoreResult<Option<OrgInfo>> {
    Ok(crate::query_opt(
        c,
        "select id, name, custom_objects_enabled, created_at from organizations where id = $1",
        &[&org],
    )
    .await?
    .map(|r| OrgInfo {
        id: r.get(0),
        name: r.get(1),
        custom_objects_enabled: r.get(2),
        created_at: r.get(3),
    }))
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

/// An organization's own limits; `None` takes the setting's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub writes_per_second: Option<f64>,
    pub writes_burst: Option<f64>,
    pub reads_per_second: Option<f64>,
    pub reads_burst: Option<f64>,
    pub max_open_processes: Option<i32>,
}

/// The organization an API key authenticates.
#[derive(Debug, Clone, Copy)]
pub struct KeyOwner {
    pub org: OrgId,
    pub custom_objects_enabled: bool,
    pub limits: Limits,
}

/// The organization a key belongs to, whether it may use custom objects,
/// and its own limits: what every public request needs, in one lookup.
pub async fn by_key(c: &impl GenericClient, key_hash: &[u8]) -> StoreResult<Option<KeyOwner>> {
    Ok(crate::query_opt(
        c,
        "select o.id, o.custom_objects_enabled, o.writes_per_second, o.writes_burst,
                o.reads_per_second, o.reads_burst, o.max_open_processes
           from api_keys k
           join organizations o on o.id = k.org_id
          where k.key_hash = $1 and k.revoked_at is null",
        &[&key_hash],
    )
    .await?
    .map(|r| KeyOwner {
        org: r.get(0),
        custom_objects_enabled: r.get(1),
        limits: Limits {
            writes_per_second: r.get(2),
            writes_burst: r.get(3),
            reads_per_second: r.get(4),
            reads_burst: r.get(5),
            max_open_processes: r.get(6),
        },
    }))
}

/// The limits of `org`, if it exists.
pub async fn limits(c: &impl GenericClient, org: OrgId) -> StoreResult<Option<Limits>> {
    Ok(crate::query_opt(
        c,
        "select writes_per_second, writes_burst, reads_per_second, reads_burst,
                max_open_processes
           from organizations where id = $1",
        &[&org],
    )
    .await?
    .map(|r| Limits {
        writes_per_second: r.get(0),
        writes_burst: r.get(1),
        reads_per_second: r.get(2),
        reads_burst: r.get(3),
        max_open_processes: r.get(4),
    }))
}

/// Replaces `org`'s limits; whether it exists. Its token buckets start
/// again full under the new limits: an operator who raises a throttled
/// organization's limits means now, not once the old bucket has refilled.
/// Two statements, not one with a data-modifying `with`: on Citus the
/// buckets are distributed and `organizations` is a reference table, and
/// one statement cannot modify both.
pub async fn set_limits(c: &impl GenericClient, org: OrgId, l: &Limits) -> StoreResult<bool> {
    let found = crate::execute(
        c,
        "update organizations
            set writes_per_second = $2, writes_burst = $3, reads_per_second = $4,
                reads_burst = $5, max_open_processes = $6
          where id = $1",
        &[
            &org,
            &l.writes_per_second,
            &l.writes_burst,
            &l.reads_per_second,
            &l.reads_burst,
            &l.max_open_processes,
        ],
    )
    .await?
        > 0;
    if found {
        crate::execute(c, "delete from rate_buckets where org_id = $1", &[&org]).await?;
    }
    Ok(found)
}
