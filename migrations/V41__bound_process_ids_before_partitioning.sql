-- processes and process_errors become partitioned by ranges of process id
-- (V44), so that retention drops whole partitions instead of deleting rows.
-- The tables as they are become the first partition, [minvalue, bound):
-- attaching a table as a partition scans it to prove its rows fit, unless a
-- validated check constraint already says so. This migration adds that
-- constraint without checking the rows (a brief lock, no scan), V42
-- validates it while reads and writes go on, and V44 attaches under a lock
-- held for catalog changes only.
--
-- bound is the next process id plus a margin of 1,000,000 for the batches
-- accepted while V42 scans (about an hour at 280 batches a second); V44
-- moves the sequence up to it, so process ids jump once by at most that
-- much. On a database that never accepted a batch, the bound is 1 and ids
-- start at 1 as before.
do $$
declare
    bound bigint := coalesce(
        pg_sequence_last_value(pg_get_serial_sequence('processes', 'id')::regclass) + 1000001,
        1);
begin
    execute format(
        'alter table processes add constraint processes_legacy_range check (id < %s) not valid',
        bound);
    execute format(
        'alter table process_errors add constraint process_errors_legacy_range '
        'check (process_id < %s) not valid',
        bound);
end
$$;
