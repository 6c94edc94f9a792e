//! The `webhooks` table: the endpoints each organization's events are
//! POSTed to, with the key that signs them. Deliveries are in
//! [`crate::deliveries`].

use chrono::{DateTime, Utc};
use objectsync_model::OrgId;

use crate::{GenericClient, StoreResult};

/// A webhook, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub org_id: OrgId,
    pub url: String,
    /// Who registered it (the console's login name), if known.
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, org_id, url, created_by, created_at";

fn from_row(r: &tokio_postgres::Row) -> Webhook {
    Webhook {
        id: r.get(0),
        org_id: r.get(1),
        url: r.get(2),
        created_by: r.get(3),
        created_at: r.get(4),
    }
}

/// Registers `url` for `org`'s events, signed with `secret`; `None` if
/// there is no such organization. Events of processes that end from now on
/// are delivered to it.
pub async fn create(
    c: &impl GenericClient,
    org: OrgId,
    url: &str,
    secret: &[u8],
    who: Option<&str>,
) -> StoreResult<Option<Webhook>> {
    let sql = format!(
        "insert into webhooks (org_id, url, secret, created_by)
         select id, $2, $3, $4 from organizations where id = $1
         returning {COLUMNS}"
    );
    Ok(crate::query_opt(c, &sql, &[&org, &url, &secret, &who])
        .await?
        .map(|r| from_row(&r)))
}

/// The webhooks of `org`, oldest first.
pub async fn list(c: &impl GenericClient, org: OrgId) -> StoreResult<Vec<Webhook>> {
    let sql = format!("select {COLUMNS} from webhooks where org_id = $1 order by id");
    Ok(crate::query(c, &sql, &[&org])
        .await?
        .iter()
        .map(from_row)
        .collect())
}

/// Removes webhook `id` of `org`, with its deliveries (pending and failed);
/// whether there was one.
pub async fn delete(c: &impl GenericClient, org: OrgId, id: i64) -> StoreResult<bool> {
    Ok(crate::execute(
        c,
        "delete from webhooks where org_id = $1 and id = $2",
        &[&org, &id],
    )
    .await?
        > 0)
}

/// The secret of webhook `id` (tests verify deliveries with it).
pub async fn secret(c: &impl GenericClient, id: i64) -> StoreResult<Option<Vec<u8>>> {
    Ok(
        crate::query_opt(c, "select secret from webhooks where id = $1", &[&id])
            .await?
            .map(|r| r.get(0)),
    )
}
