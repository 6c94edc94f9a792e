-- Adds the partitions of processes and process_errors for the process ids
-- [lo, hi): one of each with the same bounds, so that a process and its
-- rejections are kept and dropped together. The retention sweeper of the
-- workers calls it ahead of the ids being drawn (see the README's Data
-- retention); V44 calls it for the first ones.
--
-- Each partition is created on its own and then attached: ATTACH takes a
-- SHARE UPDATE EXCLUSIVE lock on the partitioned table, so reads and writes
-- go on, where CREATE TABLE ... PARTITION OF would take an ACCESS EXCLUSIVE
-- one. The attach makes the partition's indexes (the table is empty: at
-- once), which are then named after their parent's index with the
-- partition's suffix (processes_pkey_p1000001), so plans read as the
-- indexes they use. The partition is named after its lowest id.
create function processes_add_partition(lo bigint, hi bigint) returns void
    language plpgsql as $$
declare
    parent text;
    part   text;
    r      record;
begin
    foreach parent in array array['processes', 'process_errors'] loop
        part := format('%s_p%s', parent, lo);
        execute format('create table %I (like %I including defaults including storage)',
                       part, parent);
        execute format('alter table %I attach partition %I for values from (%s) to (%s)',
                       parent, part, lo, hi);
        for r in select c.relname as child, p.relname as parent_index
                   from pg_index x
                   join pg_class c on c.oid = x.indexrelid
                   join pg_inherits i on i.inhrelid = x.indexrelid
                   join pg_class p on p.oid = i.inhparent
                  where x.indrelid = part::regclass
        loop
            execute format('alter index %I rename to %I', r.child, r.parent_index || '_p' || lo);
        end loop;
    end loop;
end
$$;
