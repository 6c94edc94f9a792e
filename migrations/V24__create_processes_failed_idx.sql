-- The console's list of failed processes, newest first: failures are rare,
-- so without this the walk down processes_id_idx would read every process
-- to find a page of them.
create index if not exists processes_failed_idx on processes (id)
    where status = 'failed';
