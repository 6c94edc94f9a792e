-- processes and process_errors become tables partitioned by ranges of
-- process id (process_errors by process_id, with the same bounds), so that
-- the processes that ended before the retention time are removed by
-- detaching and dropping whole partitions: no DELETE scanning a large
-- table, no dead rows left for VACUUM. Ids are drawn in acceptance order,
-- so a partition holds the batches of a span of time; a lookup by
-- processId, the ordering gate's and the pages by id read one partition's
-- indexes, and every index of the tables is on each partition.
--
-- The tables as they are become the first partition, processes_p0 and
-- process_errors_p0, holding the ids below V41's bound (validated by V42,
-- so the attach scans nothing): under the lock below this migration only
-- changes the catalog, whatever the size of the tables. Everything that
-- named the tables is moved to the partitioned ones: indexes, foreign keys
-- to other tables, triggers (the counters of process_counts, V27), the
-- identity sequence (moved up to the bound) and the views that read them.
-- Foreign keys that referenced processes are dropped: a partition that
-- rows of another table reference could not be detached.
lock table processes, process_errors in access exclusive mode;

do $$
declare
    bound bigint := (
        select (regexp_match(pg_get_constraintdef(oid), '(\d+)'))[1]::bigint
          from pg_constraint
         where conname = 'processes_legacy_range' and conrelid = 'processes'::regclass);
    r     record;
begin
    -- process_errors' key to processes, and idempotency_keys'.
    for r in select conrelid::regclass as tab, conname
               from pg_constraint
              where contype = 'f' and confrelid = 'processes'::regclass
    loop
        execute format('alter table %s drop constraint %I', r.tab, r.conname);
    end loop;

    execute format('alter sequence %s rename to processes_p0_id_seq',
                   pg_get_serial_sequence('processes', 'id'));
    alter table processes rename to processes_p0;
    alter table process_errors rename to process_errors_p0;
    for r in select c.relname
               from pg_index x join pg_class c on c.oid = x.indexrelid
              where x.indrelid in ('processes_p0'::regclass, 'process_errors_p0'::regclass)
    loop
        execute format('alter index %I rename to %I', r.relname, r.relname || '_p0');
    end loop;

    create table processes (like processes_p0
        including defaults including identity including indexes including storage)
        partition by range (id);
    create table process_errors (like process_errors_p0
        including defaults including indexes including storage)
        partition by range (process_id);

    -- Foreign keys to other tables (organizations), added while the
    -- partitioned tables are empty; the attach below finds the same keys on
    -- the old tables and adopts them without checking rows again.
    for r in select conrelid::regclass as tab, conname, pg_get_constraintdef(oid) as def
               from pg_constraint
              where contype = 'f'
                and conrelid in ('processes_p0'::regclass, 'process_errors_p0'::regclass)
    loop
        execute format('alter table %s add constraint %I %s',
                       regexp_replace(r.tab::text, '_p0$', ''), r.conname, r.def);
    end loop;

    -- Triggers move to the partitioned tables: statement triggers (the
    -- counters) fire only on the table a statement names, and row triggers
    -- are cloned to every partition, the old ones included.
    for r in select t.tgname, t.tgrelid::regclass as tab, pg_get_triggerdef(t.oid) as def
               from pg_trigger t
              where not t.tgisinternal
                and t.tgrelid in ('processes_p0'::regclass, 'process_errors_p0'::regclass)
    loop
        execute format('drop trigger %I on %s', r.tgname, r.tab);
        execute regexp_replace(r.def, ' ON (\S+\.)?(processes|process_errors)_p0 ', ' ON \2 ');
    end loop;

    -- Ids go on from the bound; the old table's sequence goes with its
    -- identity.
    perform setval(pg_get_serial_sequence('processes', 'id'), bound, false);
    alter table processes_p0 alter column id drop identity;

    execute format('alter table processes attach partition processes_p0 '
                   'for values from (minvalue) to (%s)', bound);
    execute format('alter table process_errors attach partition process_errors_p0 '
                   'for values from (minvalue) to (%s)', bound);
    -- The partitioned indexes take the names the indexes had.
    for r in select p.relname as parent_index, c.relname as child
               from pg_index x
               join pg_class c on c.oid = x.indexrelid
               join pg_inherits i on i.inhrelid = x.indexrelid
               join pg_class p on p.oid = i.inhparent
              where x.indrelid in ('processes_p0'::regclass, 'process_errors_p0'::regclass)
    loop
        if r.parent_index <> regexp_replace(r.child, '_p0$', '') then
            execute format('alter index %I rename to %I',
                           r.parent_index, regexp_replace(r.child, '_p0$', ''));
        end if;
    end loop;

    -- Room for the first 2,000,000 ids; from then on the retention sweeper
    -- keeps partitions ahead of the ids being drawn.
    perform processes_add_partition(bound, bound + 1000000);
    perform processes_add_partition(bound + 1000000, bound + 2000000);

    -- Views (the dashboard's) read the tables they were created on, whatever
    -- their name now: each is created again on the partitioned tables.
    for r in select distinct w.ev_class::regclass as view
               from pg_depend d
               join pg_rewrite w on w.oid = d.objid
              where d.classid = 'pg_rewrite'::regclass
                and d.refobjid in ('processes_p0'::regclass, 'process_errors_p0'::regclass)
                and w.ev_class not in ('processes_p0'::regclass, 'process_errors_p0'::regclass)
    loop
        execute format('create or replace view %s as %s', r.view,
                       regexp_replace(pg_get_viewdef(r.view),
                                      '\m(processes|process_errors)_p0\M', '\1', 'g'));
    end loop;
end
$$;

comment on table processes is
    'One row per accepted batch; partitioned by ranges of id (processes_p<lowest id>), and ended processes are removed a partition at a time after the retention time.';

comment on table process_errors is
    'Rejected records and refused links of a process; partitioned like processes, by process_id, and dropped with it.';
