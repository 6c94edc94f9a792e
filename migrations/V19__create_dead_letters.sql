-- Dead-lettered batches, kept for operators to read, replay or discard (the
-- console lists them). The dead-letter tracker inserts a row and fails the
-- process in one transaction. A message that names no process (garbage on a
-- batch queue) is kept too, with no organization or process. No foreign
-- keys: a dead letter may name a process that never existed, and must
-- outlive one that is gone.
create table dead_letters (
    id           bigint       generated always as identity primary key,
    org_id       bigint,
    process_id   bigint,
    object_type  text,
    kind         process_name,
    reason       text         not null,
    deliveries   integer      not null,
    headers      jsonb,
    body         bytea        not null,
    dead_at      timestamptz  not null default now(),
    resolution   text         check (resolution in ('replayed', 'discarded')),
    resolved_by  text,
    resolved_at  timestamptz,
    replayed_as  bigint,
    check ((resolution is null) = (resolved_at is null)),
    check (replayed_as is null or resolution = 'replayed')
);

-- A process is dead-lettered at most once: the tracker's insert is
-- idempotent (`on conflict do nothing`) when the broker delivers it twice.
create unique index dead_letters_process_idx on dead_letters (org_id, process_id)
    where process_id is not null;

-- What the console shows first: the unresolved ones, newest first.
create index dead_letters_unresolved_idx on dead_letters (id desc)
    where resolution is null;
