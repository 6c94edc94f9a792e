-- The outbox of completion events: one row for each process that ended
-- (`completed` or `failed`), written in the transaction that ends it (by
-- the trigger of V38), so an event is never lost and never written for a
-- process that did not end. Workers publish each row to the exchange
-- `{prefix}.events`, wait for the broker's confirm, then delete it: the
-- table holds only the events not published yet. `id` is the event's id
-- (the message id on the broker, `webhook-id` of its webhook deliveries),
-- drawn once here, so a copy published again after a crash carries it too.
create table process_events (
    seq         bigint      generated always as identity primary key,
    id          uuid        not null default gen_random_uuid(),
    org_id      bigint      not null,
    process_id  bigint      not null,
    created_at  timestamptz not null default now()
);
