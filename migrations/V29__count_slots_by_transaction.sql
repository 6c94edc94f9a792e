-- The counters of record_counts (V25) and process_counts (V27) pick their
-- slot from the writing transaction's id instead of the backend's pid.
-- A counter row stays locked until its writer commits (ingest holds its
-- process row, and so its slot, while RabbitMQ confirms the message), and
-- pooled connections live long: two of a pool's connections whose pids
-- agree modulo 16 would wait for each other on every batch of an
-- organization for as long as they lived. Transactions running at once
-- have nearly consecutive ids, so they spread over the 16 slots.
create or replace function record_counts_add() returns trigger
    language plpgsql as $$
begin
    insert into record_counts as c (org_id, type_id, slot, n)
    select org_id, type_id, (pg_current_xact_id()::text::bigint % 16)::smallint, count(*)
      from new_rows
     group by org_id, type_id
        on conflict (org_id, type_id, slot) do update set n = c.n + excluded.n;
    return null;
end
$$;

create or replace function record_counts_subtract() returns trigger
    language plpgsql as $$
begin
    insert into record_counts as c (org_id, type_id, slot, n)
    select org_id, type_id, (pg_current_xact_id()::text::bigint % 16)::smallint, -count(*)
      from old_rows
     group by org_id, type_id
        on conflict (org_id, type_id, slot) do update set n = c.n + excluded.n;
    return null;
end
$$;

create or replace function process_counts_add() returns trigger
    language plpgsql as $$
begin
    insert into process_counts as c (org_id, slot, n)
    select org_id, (pg_current_xact_id()::text::bigint % 16)::smallint, count(*)
      from new_rows
     group by org_id
        on conflict (org_id, slot) do update set n = c.n + excluded.n;
    return null;
end
$$;

create or replace function process_counts_subtract() returns trigger
    language plpgsql as $$
begin
    insert into process_counts as c (org_id, slot, n)
    select org_id, (pg_current_xact_id()::text::bigint % 16)::smallint, -count(*)
      from old_rows
     group by org_id
        on conflict (org_id, slot) do update set n = c.n + excluded.n;
    return null;
end
$$;
