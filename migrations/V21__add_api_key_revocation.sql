-- A revoked key stays, for the record, but authenticates nothing: the lookup
-- of every request filters on it, so revocation takes effect on the next
-- request on every ingest replica.
alter table api_keys add column revoked_at timestamptz;
