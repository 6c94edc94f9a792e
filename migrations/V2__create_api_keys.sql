-- API keys are stored as the SHA-256 of the key; the key itself is shown once.
create table api_keys (
    org_id      bigint      not null references organizations (id) on delete cascade,
    key_hash    bytea       not null,
    created_at  timestamptz not null default now(),
    primary key (org_id, key_hash)
);

create unique index api_keys_key_hash_idx on api_keys (key_hash);
