//! The dashboard views on Citus.
//!
//! On PostgreSQL a view reads its tables with its owner's rights, so the
//! role `objectsync_dashboard` reads the views and no table. Citus reads
//! a distributed table's shards as the session's role instead, so the same
//! views fail for that role ("permission denied for table
//! processes_102008"; Citus issues 1683 and 6161). Rather than granting
//! the role the tables, each view of schema `dashboard` reads through a
//! function of schema `dashboard_rows` that holds the view's query and runs
//! with its owner's rights (`security definer`), as a view on PostgreSQL
//! does: Citus then reads the shards as the owner. The view keeps its name,
//! columns and comment, and only the dashboard role (and the owner) may
//! call the functions.
//!
//! The price: a filter on a view no longer reaches its tables (the function
//! computes every organization's rows, then the filter applies). The views
//! read only open processes and those that ended in the last 24 hours, so
//! that stays a small read.
//!
//! A migration that replaces a view (`create or replace view`) makes it
//! read its tables again; the next [`wrap`] (every `migrate` that applied
//! a migration) puts the function back in front with the new query.

use tokio_postgres::Client;

use crate::db::DbError;

/// The schema of the functions behind the views.
const ROWS: &str = "dashboard_rows";

/// Puts a `security definer` function in front of every view of schema
/// `dashboard` that reads its tables directly; the names of those it
/// changed. Only for a Citus coordinator: `migrate` calls it there after
/// every run that applied a migration.
pub async fn wrap(client: &mut Client) -> Result<Vec<String>, DbError> {
    let tx = client.transaction().await?;
    let views = tx
        .query(
            "select c.relname::text, quote_ident(c.relname), pg_get_viewdef(c.oid, true)
               from pg_class c
              where c.relnamespace = 'dashboard'::regnamespace and c.relkind = 'v'
                and not exists (
                    select from pg_depend d
                      join pg_rewrite w on w.oid = d.objid and d.classid = 'pg_rewrite'::regclass
                      join pg_proc p on p.oid = d.refobjid and d.refclassid = 'pg_proc'::regclass
                     where w.ev_class = c.oid and p.pronamespace::regnamespace::text = $1)
              order by 1",
            &[&ROWS],
        )
        .await?;
    if views.is_empty() {
        return Ok(Vec::new());
    }
    tx.batch_execute(&format!("create schema if not exists {ROWS}"))
        .await?;
    let mut wrapped = Vec::new();
    for v in &views {
        let (name, ident, query): (String, String, String) = (v.get(0), v.get(1), v.get(2));
        let columns: Vec<String> = tx
            .query(
                "select quote_ident(attname) || ' ' || format_type(atttypid, atttypmod)
                   from pg_attribute
                  where attrelid = ('dashboard.' || quote_ident($1))::regclass
                    and attnum > 0 and not attisdropped
                  order by attnum",
                &[&name],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let function = format!("{ROWS}.{ident}()");
        let query = query.trim_end().trim_end_matches(';');
        tx.batch_execute(&format!(
            "drop function if exists {function};
             create function {function}
                 returns table ({columns})
                 language sql stable security definer
                 set search_path = public, pg_temp
                 as $objectsync_view$ {query} $objectsync_view$;
             revoke all on function {function} from public;
             grant execute on function {function} to objectsync_dashboard;
             create or replace view dashboard.{view} as select * from {function};",
            columns = columns.join(", "),
            view = ident,
        ))
        .await?;
        wrapped.push(name);
    }
    tx.commit().await?;
    Ok(wrapped)
}
