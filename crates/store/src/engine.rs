//! Which kind of PostgreSQL the store talks to: one server, or the
//! coordinator of a Citus cluster whose tables `migrate` distributed.
//!
//! Nearly every statement is the same on both. What differs is what plain
//! PostgreSQL does by itself and Citus does not: on Citus the triggers that
//! keep `record_counts` and `process_counts` are gone (Citus runs no
//! triggers on distributed tables, and theirs read transition tables,
//! which a statement on a shard cannot), so the writer counts in its own
//! transaction; and a transaction's id must be asked of the coordinator in
//! a statement of its own, as a `returning` clause runs on a worker.

use objectsync_model::OrgId;

use crate::{GenericClient, Scope, StoreResult};

/// The kind of database; [`Engine::detect`] tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    /// One PostgreSQL server: triggers keep the counts.
    #[default]
    Postgres,
    /// A Citus coordinator with the tables distributed: the store keeps
    /// the counts.
    Citus,
}

/// The counter slot of the current transaction: spread by transaction id
/// like the triggers' (migration V29), so that concurrent writers seldom
/// wait for one counter row.
const SLOT: &str = "(pg_current_xact_id()::text::bigint % 16)::smallint";

impl Engine {
    /// Citus when `records` is a distributed table (which `migrate` made it
    /// on a coordinator with workers), else plain PostgreSQL.
    pub async fn detect(c: &impl GenericClient) -> StoreResult<Self> {
        let citus: bool = crate::query_one(
            c,
            "select exists (select from pg_extension where extname = 'citus')",
            &[],
        )
        .await?
        .get(0);
        if !citus {
            return Ok(Self::Postgres);
        }
        let distributed: bool = crate::query_one(
            c,
            "select exists (select from pg_dist_partition
                             where logicalrelid = 'records'::regclass)",
            &[],
        )
        .await?
        .get(0);
        Ok(if distributed {
            Self::Citus
        } else {
            Self::Postgres
        })
    }

    /// Adds `n` (negative: subtracts) to the count of `scope`'s records,
    /// where no trigger does.
    pub async fn count_records(
        self,
        tx: &impl GenericClient,
        scope: Scope,
        n: i64,
    ) -> StoreResult<()> {
        if self == Self::Postgres || n == 0 {
            return Ok(());
        }
        let sql = format!(
            "insert into record_counts as c (org_id, type_id, slot, n)
             values ($1, $2, {SLOT}, $3)
                 on conflict (org_id, type_id, slot) do update set n = c.n + excluded.n"
        );
        crate::execute(tx, &sql, &[&scope.org, &scope.type_id, &n])
            .await
            .map(drop)
    }

    /// Adds one to the count of `org`'s processes, where no trigger does.
    pub async fn count_process(self, tx: &impl GenericClient, org: OrgId) -> StoreResult<()> {
        if self == Self::Postgres {
            return Ok(());
        }
        let sql = format!(
            "insert into process_counts as c (org_id, slot, n)
             values ($1, {SLOT}, 1)
                 on conflict (org_id, slot) do update set n = c.n + excluded.n"
        );
        crate::execute(tx, &sql, &[&org]).await.map(drop)
    }
}
