-- Before PostgreSQL 15 every role may create tables in the schema public,
-- so the app role of V39 could change the schema after all. PostgreSQL 15
-- and later already revoke it; this does the same on older servers. Where
-- the migrating user does not own the schema public (a managed server's
-- admin user on PostgreSQL 14 and earlier) it changes nothing and
-- PostgreSQL says so with a warning.
revoke create on schema public from public;
