-- How the retention sweeper of the workers removes an expired partition of
-- processes when it runs as the app role of V39, which may detach or drop
-- no table: these functions do it with the rights of their owner (the
-- schema's owner), and only the app role (and the owner) may call them.
-- Each takes the number in the partitions' names (their lowest id; 0 for
-- the first, from minvalue), never a table name: they reach
-- public.processes_p<n> and public.process_errors_p<n> and nothing else,
-- and check that these are (or were) partitions of processes and
-- process_errors before changing anything.
--
-- A session that owns the tables detaches with DETACH PARTITION ...
-- CONCURRENTLY instead, which blocks no one but cannot run in a function.
-- Here the detach takes an ACCESS EXCLUSIVE lock on processes and then on
-- process_errors (the order the workers write them in) for the catalog
-- changes only. Waiting for it queues the statements on the tables behind
-- it, so each lock is waited for 500 ms at most (lock_timeout): past that
-- the function fails with lock_not_available, changes nothing, and the
-- sweeper tries again at its next sweep.

-- Detaches the partitions p<n> of process_errors and processes if every id
-- of their range has been drawn, none of their processes is open and the
-- last one ended before cutoff, checked under the lock; whether it did.
-- A detach ... concurrently left pending (a sweep of the owner
-- interrupted) is finalized as it began.
create function processes_detach_partition(n bigint, cutoff timestamptz) returns boolean
    language plpgsql security definer
    set search_path = public, pg_temp
    set lock_timeout = '500ms'
    set enable_seqscan = off
    set enable_bitmapscan = off
as $$
declare
    part     regclass := to_regclass(format('public.%I', 'processes_p' || n));
    errors   regclass := to_regclass(format('public.%I', 'process_errors_p' || n));
    pending  boolean;
    hi       bigint;
    next_id  bigint;
    is_open  boolean;
    last_end timestamptz;
    r        record;
begin
    select i.inhdetachpending,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''?(-?[0-9]+)''?\)'))[1]::bigint
      into pending, hi
      from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
     where i.inhrelid = part and i.inhparent = 'processes'::regclass;
    if not found then
        raise exception 'processes_p% is not a partition of processes', n
            using errcode = 'invalid_parameter_value';
    end if;

    if not pending then
        execute format('select case when is_called then last_value + 1 else last_value end from %s',
                       pg_get_serial_sequence('processes', 'id'))
           into next_id;
        if hi is null or hi > next_id then
            return false;
        end if;
        lock table processes, process_errors in access exclusive mode;
        -- Two index probes; a batch that drew its id before the lock was
        -- taken has committed (or rolled back) by now.
        execute format('select exists (select 1 from %1$s where status in (''queued'', ''in_process'')),
                               (select max(completed_at) from %1$s)', part)
           into is_open, last_end;
        if is_open or coalesce(last_end >= cutoff, false) then
            return false;
        end if;
    end if;

    for r in select i.inhparent::regclass as parent, i.inhrelid::regclass as child,
                    i.inhdetachpending as pending
               from pg_inherits i
              where (i.inhrelid = errors and i.inhparent = 'process_errors'::regclass)
                 or (i.inhrelid = part and i.inhparent = 'processes'::regclass)
              order by i.inhrelid = part
    loop
        execute format('alter table %s detach partition %s%s',
                       r.parent, r.child, case when r.pending then ' finalize' else '' end);
    end loop;
    return true;
end
$$;

-- Drops the detached partitions p<n> of processes and process_errors,
-- either of which may be gone already, if none of the processes is open
-- and the last ended before cutoff; subtracts the processes from
-- process_counts (dropping a table fires no delete trigger) and returns how
-- many processes and rejections went, or no row if they do not qualify.
-- Each table must be an ordinary table of the owner's, not a partition.
-- Counting reads each table once, which no one else uses any more: run it
-- with statement_timeout 0.
create function processes_drop_partition(n bigint, cutoff timestamptz)
    returns table (dropped_processes bigint, dropped_rejections bigint)
    language plpgsql security definer
    set search_path = public, pg_temp
    set enable_seqscan = off
    set enable_bitmapscan = off
as $$
declare
    part     regclass := to_regclass(format('public.%I', 'processes_p' || n));
    errors   regclass := to_regclass(format('public.%I', 'process_errors_p' || n));
    is_open  boolean;
    last_end timestamptz;
begin
    if (part is null and errors is null) or exists (
        select 1
          from pg_class c
         where c.oid in (part, errors)
           and (c.relkind <> 'r' or c.relispartition
                or c.relowner <> (select oid from pg_roles where rolname = current_user)))
    then
        raise exception 'processes_p% is not a detached partition of processes', n
            using errcode = 'invalid_parameter_value';
    end if;

    if part is not null then
        execute format('select exists (select 1 from %1$s where status in (''queued'', ''in_process'')),
                               (select max(completed_at) from %1$s)', part)
           into is_open, last_end;
        if is_open or coalesce(last_end >= cutoff, false) then
            return;
        end if;
    end if;

    perform set_config('enable_seqscan', 'on', true);
    dropped_processes := 0;
    dropped_rejections := 0;
    if errors is not null then
        execute format('select count(*) from %s', errors) into dropped_rejections;
    end if;
    -- The counters last, so that their rows (which accepting a batch
    -- updates too) stay locked only until the drop commits.
    if part is not null then
        execute format(
            'with gone as (select org_id, count(*) as n from %s group by org_id),
                  counted as (
                      insert into process_counts as c (org_id, slot, n)
                      select org_id, (pg_current_xact_id()::text::bigint %% 16)::smallint, -n
                        from gone
                          on conflict (org_id, slot) do update set n = c.n + excluded.n)
             select coalesce(sum(n), 0)::bigint from gone', part)
           into dropped_processes;
    end if;
    if errors is not null then
        execute format('drop table %s', errors);
    end if;
    if part is not null then
        execute format('drop table %s', part);
    end if;
    return next;
end
$$;

-- Attaches the detached partition p<n> of process_errors again, with the
-- bounds of processes' partition p<n>, which is attached: a sweep of the
-- owner interrupted between its two detaches left it so. Attaching takes a
-- SHARE UPDATE EXCLUSIVE lock on process_errors (reads and writes go on).
create function process_errors_attach_partition(n bigint) returns void
    language plpgsql security definer
    set search_path = public, pg_temp
    set lock_timeout = '500ms'
as $$
declare
    part   regclass := to_regclass(format('public.%I', 'processes_p' || n));
    errors regclass := to_regclass(format('public.%I', 'process_errors_p' || n));
    bound  text;
begin
    select pg_get_expr(c.relpartbound, c.oid)
      into bound
      from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
     where i.inhrelid = part and i.inhparent = 'processes'::regclass and not i.inhdetachpending;
    if bound is null or not exists (
        select 1
          from pg_class c
         where c.oid = errors and c.relkind = 'r' and not c.relispartition
           and c.relowner = (select oid from pg_roles where rolname = current_user))
    then
        raise exception 'process_errors_p% is not a detached partition of process_errors beside an attached processes_p%', n, n
            using errcode = 'invalid_parameter_value';
    end if;
    execute format('alter table process_errors attach partition %s %s', errors, bound);
end
$$;

revoke execute on function processes_detach_partition(bigint, timestamptz) from public;
revoke execute on function processes_drop_partition(bigint, timestamptz) from public;
revoke execute on function process_errors_attach_partition(bigint) from public;
grant execute on function processes_detach_partition(bigint, timestamptz) to objectsync_app;
grant execute on function processes_drop_partition(bigint, timestamptz) to objectsync_app;
grant execute on function process_errors_attach_partition(bigint) to objectsync_app;
