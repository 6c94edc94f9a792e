-- One row per rejected record (or rejected link) of a process, in the order
-- the worker met them.
create table process_errors (
    org_id          bigint  not null,
    process_id      bigint  not null,
    position        integer not null,
    record_index    integer not null,
    identifiers     jsonb   not null,
    code            text    not null,
    message         text    not null,
    primary key (org_id, process_id, position),
    foreign key (org_id, process_id) references processes (org_id, id) on delete cascade
);
