-- An exact count of each organization's processes, kept by statement-level
-- triggers like record_counts (V25), so that GET /v3/processes answers its
-- `count` without counting. Spread over 16 rows per organization (`slot`,
-- from the backend's pid): concurrent requests of one organization seldom
-- wait for each other's row lock, which is held until their commit.
create table process_counts (
    org_id  bigint   not null,
    slot    smallint not null,
    n       bigint   not null,
    primary key (org_id, slot)
);

create function process_counts_add() returns trigger
    language plpgsql as $$
begin
    insert into process_counts as c (org_id, slot, n)
    select org_id, pg_backend_pid() % 16, count(*)
      from new_rows
     group by org_id
        on conflict (org_id, slot) do update set n = c.n + excluded.n;
    return null;
end
$$;

create function process_counts_subtract() returns trigger
    language plpgsql as $$
begin
    insert into process_counts as c (org_id, slot, n)
    select org_id, pg_backend_pid() % 16, -count(*)
      from old_rows
     group by org_id
        on conflict (org_id, slot) do update set n = c.n + excluded.n;
    return null;
end
$$;

-- No process may be created between the count below and the triggers.
lock table processes in share mode;

create trigger processes_count_inserted
    after insert on processes
    referencing new table as new_rows
    for each statement execute function process_counts_add();

create trigger processes_count_deleted
    after delete on processes
    referencing old table as old_rows
    for each statement execute function process_counts_subtract();

insert into process_counts (org_id, slot, n)
select org_id, 0, count(*)
  from processes
 group by org_id;
