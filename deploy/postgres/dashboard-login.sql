-- The login Grafana (or another BI tool) reads the dashboard views through:
-- a member of objectsync_dashboard, the role migration V13 creates, which
-- can read the views of the schema dashboard and nothing else (see
-- deploy/grafana/README.md). Run after the migrations, with psql:
--
--   psql -v ON_ERROR_STOP=1 -v password="$PASSWORD" -f dashboard-login.sql
--
-- Idempotent: it creates the login if missing and sets its password every
-- time, so changing the password and running it again is how to rotate it.
-- Roles belong to the cluster, the grant of V13 to each database: run the
-- migrations in every database the login should read.

select not exists (
    select from pg_roles where rolname = 'objectsync_dashboard_login'
) as missing \gset
\if :missing
create role objectsync_dashboard_login login;
\endif

grant objectsync_dashboard to objectsync_dashboard_login;
alter role objectsync_dashboard_login password :'password';
-- No writes, and no runaway query from a dashboard.
alter role objectsync_dashboard_login set default_transaction_read_only = on;
alter role objectsync_dashboard_login set statement_timeout = '30s';
