-- Tenants. Every other table leads its keys with org_id.
create table organizations (
    id                      bigint      generated always as identity primary key,
    name                    text        not null,
    custom_objects_enabled  boolean     not null default false,
    created_at              timestamptz not null default now()
);
