-- One row per accepted batch. A stable interface for dashboards: see the
-- README's "Process tables" section before changing a column.
create table processes (
    org_id              bigint          not null references organizations (id) on delete cascade,
    id                  bigint          generated always as identity,
    name                process_name    not null,
    status              process_status  not null default 'queued',
    object_type         text            not null,
    records_total       integer         not null,
    records_processed   integer         not null default 0,
    records_created     integer         not null default 0,
    records_updated     integer         not null default 0,
    records_deleted     integer         not null default 0,
    records_failed      integer         not null default 0,
    error               text,
    last_error          text,
    deliveries          integer         not null default 0,
    created_at          timestamptz     not null default now(),
    started_at          timestamptz,
    completed_at        timestamptz,
    primary key (org_id, id)
);

create index processes_open_idx on processes (status, created_at)
    where status in ('queued', 'in_process');
