-- One row per object type of an organization; attributes are the ordered
-- definition list (the first is the primary attribute).
create table object_types (
    org_id      bigint      not null references organizations (id) on delete cascade,
    id          integer     generated always as identity,
    name        text        not null,
    label       text        not null,
    attributes  jsonb       not null,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    primary key (org_id, id),
    unique (org_id, name)
);
