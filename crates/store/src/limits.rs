//! Rate limits and the backlog cap: token buckets in `rate_buckets`, and
//! the count of an organization's open processes.

use objectsync_model::OrgId;

use crate::{GenericClient, StoreResult};

/// A class of requests with a bucket of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Batch requests: upsert, delete.
    Writes,
    /// Everything else under `/v3`.
    Reads,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Writes => "writes",
            Self::Reads => "reads",
        }
    }
}

/// A bucket's rule: tokens added per second, and how many it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// What taking a token found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Taken {
    /// A token was taken: the request may go on.
    pub allowed: bool,
    /// Tokens left after this request.
    pub tokens: f64,
}

/// Takes a token from `org`'s bucket of `class`, refilled at `rate` since
/// it was last touched, in one statement (so concurrent requests on every
/// replica see one bucket). A refused request takes nothing.
pub async fn take(
    c: &impl GenericClient,
    org: OrgId,
    class: Class,
    rate: Rate,
) -> StoreResult<Taken> {
    let row = crate::query_one(
        c,
        // `excluded.updated_at` is `now()`, this statement's one instant,
        // so the uses agree; named so because Citus refuses functions
        // that are not immutable in `do update`.
        "insert into rate_buckets as b (org_id, class, tokens, updated_at, allowed)
         values ($1, $2, $4::float8 - 1, now(), true)
         on conflict (org_id, class) do update
            set tokens = case when least($4::float8, b.tokens + extract(epoch from excluded.updated_at - b.updated_at)::float8 * $3::float8) >= 1
                              then least($4::float8, b.tokens + extract(epoch from excluded.updated_at - b.updated_at)::float8 * $3::float8) - 1
                              else least($4::float8, b.tokens + extract(epoch from excluded.updated_at - b.updated_at)::float8 * $3::float8) end,
                allowed = least($4::float8, b.tokens + extract(epoch from excluded.updated_at - b.updated_at)::float8 * $3::float8) >= 1,
                updated_at = excluded.updated_at
         returning b.allowed, b.tokens",
        &[&org, &class.as_str(), &rate.per_second, &rate.burst],
    )
    .await?;
    Ok(Taken {
        allowed: row.get(0),
        tokens: row.get(1),
    })
}

/// Gives back the token a request took from `org`'s bucket of `class`,
/// for a request refused by another limit after it took one (the backlog
/// cap): a refused request spends nothing. Returns the tokens now in the
/// bucket (as of its last update), if it exists.
pub async fn give_back(
    c: &impl GenericClient,
    org: OrgId,
    class: Class,
    rate: Rate,
) -> StoreResult<Option<f64>> {
    Ok(crate::query_opt(
        c,
        "update rate_buckets set tokens = least($3::float8, tokens + 1)
          where org_id = $1 and class = $2
         returning tokens",
        &[&org, &class.as_str(), &rate.burst],
    )
    .await?
    .map(|r| r.get(0)))
}

/// The advisory lock class of backlog locks ("osbl"); public so that tests
/// can hold an organization's lock as a slow transaction would.
pub const BACKLOG_LOCK_CLASS: i32 = 0x6f73_626c;

/// Takes `org`'s backlog lock until the end of the transaction `tx`, so
/// that counting its open processes and inserting one is done by one
/// transaction at a time and the cap holds under concurrent requests: a
/// transaction that counts after taking it sees every process inserted by
/// the transactions that held it before (under read committed, each
/// statement sees what committed before it began).
///
/// Taken before [`crate::processes::insert`] takes the organization's
/// ordering lock, and nothing takes the two the other way round.
/// Organizations whose ids agree modulo 2³¹ share a lock.
pub async fn lock_backlog(tx: &impl GenericClient, org: OrgId) -> StoreResult<()> {
    crate::execute(
        tx,
        "select pg_advisory_xact_lock($1, $2)",
        &[&BACKLOG_LOCK_CLASS, &((org.get() & 0x7fff_ffff) as i32)],
    )
    .await?;
    Ok(())
}

/// How many processes of `org` are open, counting no further than `cap`
/// (the backlog check needs no more, and the partial index of open
/// processes answers it without touching the rest).
pub async fn open_processes(c: &impl GenericClient, org: OrgId, cap: i64) -> StoreResult<i64> {
    Ok(crate::query_one(
        c,
        "select count(*) from (
             select 1 from processes
              where org_id = $1 and status in ('queued', 'in_process')
              limit $2) as open",
        &[&org, &cap],
    )
    .await?
    .get(0))
}

/// The organizations with the most open processes, most first.
pub async fn busiest(c: &impl GenericClient, n: i64) -> StoreResult<Vec<(OrgId, i64)>> {
    Ok(crate::query(
        c,
        "select org_id, count(*) from processes
          where status in ('queued', 'in_process')
          group by org_id order by 2 desc limit $1",
        &[&n],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}
