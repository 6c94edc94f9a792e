-- The dashboard views (V13) read the processes that ended in the last 24
-- hours; no other index orders processes by time, so without this one every
-- refresh would read the whole table. Partial: an open process (completed_at
-- null) has no entry, so accepting a batch writes nothing here, and the
-- update that ends a process already changes status, an indexed column, so
-- it loses no HOT update to this index either.
-- "if not exists": on a large table, create it by hand first with
-- "create index concurrently", which does not block writes (a migration runs
-- in a transaction, where concurrently is not allowed), and this is a no-op.
create index if not exists processes_completed_at_idx on processes (completed_at)
    where completed_at is not null;
