-- The console lists processes of every organization, newest first, a page
-- at a time (keyset on id); the primary key leads with org_id and cannot
-- serve that order.
create index if not exists processes_id_idx on processes (id);
