-- Idempotency-Key of upsert and delete requests: the same key with the same
-- request within 24 hours answers the same process. Rows older than that are
-- swept by ingest.
create table idempotency_keys (
    org_id          bigint      not null,
    key             text        not null,
    request_hash    bytea       not null,
    process_id      bigint      not null,
    created_at      timestamptz not null default now(),
    primary key (org_id, key),
    foreign key (org_id, process_id) references processes (org_id, id) on delete cascade
);

create index idempotency_keys_created_at_idx on idempotency_keys (created_at);
