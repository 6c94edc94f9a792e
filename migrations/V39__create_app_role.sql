-- The role ingest, the workers and the admin CLI run as: it reads and writes
-- the rows of every table and sequence of the service, and changes no
-- schema (no create, alter or drop: it owns nothing). The migrations run as
-- the schema's owner (the user `objectsync-ingest migrate` connects as).
-- Created without login: `objectsync-ingest migrate` with
-- OBJECTSYNC__DATABASE__APP_PASSWORD (or _FILE) gives it login and that
-- password, or an operator makes a login role a member of it.
--
-- Roles belong to the whole cluster, not to this database: another database
-- of the cluster may have created it already, or (tests migrate many
-- databases at once) be creating it at this moment, which ends in
-- duplicate_object or, past the check, in unique_violation.
do $$
begin
    if not exists (select from pg_roles where rolname = 'objectsync_app') then
        create role objectsync_app nologin;
    end if;
exception
    when duplicate_object or unique_violation then
        null;
end
$$;

-- Grants belong to this database and are idempotent.
do $$
begin
    execute format('grant connect on database %I to objectsync_app', current_database());
end
$$;
grant usage on schema public to objectsync_app;
grant select, insert, update, delete on all tables in schema public to objectsync_app;
grant usage, select on all sequences in schema public to objectsync_app;

-- The migrations' own bookkeeping: the services read which version the
-- schema is at, and never write it.
revoke insert, update, delete on refinery_schema_history from objectsync_app;

-- A table or sequence a later migration creates in public (run by the same
-- user as this one) gets the same rights without a grant of its own.
alter default privileges in schema public
    grant select, insert, update, delete on tables to objectsync_app;
alter default privileges in schema public
    grant usage, select on sequences to objectsync_app;
