-- Every batch a worker has received and not yet acknowledged — prefetched,
-- waiting for its turn or being applied — written with each heartbeat, as
-- `applying` is: [{"org_id": 1, "process_id": 2, "since": "..."}, ...]. A
-- process whose message a live worker holds is never taken for lost.
alter table workers add column holding jsonb not null default '[]';
