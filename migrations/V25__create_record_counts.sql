-- An exact count of each organization's records of each type, kept by the
-- database itself so that GET …/records can answer Brevo's `count` without
-- counting: statement-level triggers add the rows each statement inserted
-- and subtract those it deleted, whoever runs it (a worker of any version,
-- an operator's SQL). Each count is spread over 16 rows (`slot`, from the
-- backend's pid) so that concurrent batches of one type seldom wait for
-- each other's row lock; the count is the sum of its rows.
create table record_counts (
    org_id   bigint   not null,
    type_id  integer  not null,
    slot     smallint not null,
    n        bigint   not null,
    primary key (org_id, type_id, slot)
);

create function record_counts_add() returns trigger
    language plpgsql as $$
begin
    insert into record_counts as c (org_id, type_id, slot, n)
    select org_id, type_id, pg_backend_pid() % 16, count(*)
      from new_rows
     group by org_id, type_id
        on conflict (org_id, type_id, slot) do update set n = c.n + excluded.n;
    return null;
end
$$;

create function record_counts_subtract() returns trigger
    language plpgsql as $$
begin
    insert into record_counts as c (org_id, type_id, slot, n)
    select org_id, type_id, pg_backend_pid() % 16, -count(*)
      from old_rows
     group by org_id, type_id
        on conflict (org_id, type_id, slot) do update set n = c.n + excluded.n;
    return null;
end
$$;

-- No write may slip between the count below and the triggers: a share lock
-- lets readers on and makes writers wait for this migration to commit.
lock table records in share mode;

create trigger records_count_inserted
    after insert on records
    referencing new table as new_rows
    for each statement execute function record_counts_add();

create trigger records_count_deleted
    after delete on records
    referencing old table as old_rows
    for each statement execute function record_counts_subtract();

insert into record_counts (org_id, type_id, slot, n)
select org_id, type_id, 0, count(*)
  from records
 group by org_id, type_id;
