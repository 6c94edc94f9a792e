-- One delivery of one event to one webhook, written with the event (V38).
-- A delivery is pending while `failed_at` is null: it is attempted once
-- `next_attempt_at` has come (a worker that takes it pushes that forward
-- first, so a worker that dies mid-attempt leaves it to be taken again),
-- retried with backoff until `retry_until`, then failed. A delivered one
-- is deleted; failed ones stay for operators to read and resend, until
-- their webhook is deleted.
create table webhook_deliveries (
    id               bigint      generated always as identity primary key,
    webhook_id       bigint      not null references webhooks (id) on delete cascade,
    event_id         uuid        not null,
    org_id           bigint      not null,
    process_id       bigint      not null,
    attempts         integer     not null default 0,
    next_attempt_at  timestamptz not null default now(),
    retry_until      timestamptz,
    last_attempt_at  timestamptz,
    last_error       text,
    failed_at        timestamptz,
    created_at       timestamptz not null default now()
);

-- What is due, per endpoint (workers take a few of each endpoint's).
create index webhook_deliveries_due_idx
    on webhook_deliveries (webhook_id, next_attempt_at) where failed_at is null;
-- Every delivery of an endpoint: its failed ones newest first (the
-- console), and the rows a deleted webhook takes with it.
create index webhook_deliveries_webhook_idx on webhook_deliveries (webhook_id, failed_at);
