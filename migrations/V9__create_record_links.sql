-- Links between records. A link is symmetric and stored in both directions,
-- so that "the records linked to X" and "how many records of type T does X
-- hold" are both prefix scans of the primary key.
create table record_links (
    org_id      bigint      not null,
    src_type    integer     not null,
    src_id      bigint      not null,
    dst_type    integer     not null,
    dst_id      bigint      not null,
    created_at  timestamptz not null default now(),
    primary key (org_id, src_type, src_id, dst_type, dst_id)
);
