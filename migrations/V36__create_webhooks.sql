-- Webhook endpoints of organizations (Standard Webhooks): every event of
-- the organization is POSTed to `url`, signed with `secret`. The secret is
-- the raw HMAC key, kept as it is because every delivery needs it to sign
-- (a hash could not sign): like the database password, it is a secret at
-- rest, readable by whoever reads this table.
create table webhooks (
    id          bigint      generated always as identity primary key,
    org_id      bigint      not null references organizations (id) on delete cascade,
    url         text        not null,
    secret      bytea       not null,
    created_by  text,
    created_at  timestamptz not null default now()
);

create index webhooks_org_idx on webhooks (org_id);
