-- Every transition of a process into `completed` or `failed` writes its
-- event (V35) and one delivery for each webhook of its organization (V37),
-- in the same transaction: whatever ends a process (a worker applying its
-- batch, the dead-letter tracker, the monitors, an operator, a statement
-- typed by hand) cannot forget to. A final process never changes status
-- again, so each process gets one event. The `when` clause is checked
-- without calling the function, so every other update of a process row
-- (started, waits, deliveries) costs nothing more.
create function process_ended() returns trigger
    language plpgsql as $$
declare
    event uuid := gen_random_uuid();
begin
    insert into process_events (id, org_id, process_id) values (event, new.org_id, new.id);
    insert into webhook_deliveries (webhook_id, event_id, org_id, process_id)
    select w.id, event, new.org_id, new.id
      from webhooks w
     where w.org_id = new.org_id;
    return null;
end
$$;

create trigger processes_ended
    after update of status on processes
    for each row
    when (new.status in ('completed', 'failed') and old.status in ('queued', 'in_process'))
    execute function process_ended();
