-- When a key last authenticated a request, to the minute: written by
-- ingest at most once a minute per key and replica (and only when the
-- stored time is older), so that operators rotating a key can see whether
-- the old one is still in use before revoking it. Null: not used since
-- this column was added.
alter table api_keys add column last_used_at timestamptz;
