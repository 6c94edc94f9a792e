-- Outcome counts of the association entries of a batch: links made, links
-- removed, and link requests refused (each refusal also has a process_errors row).
alter table processes
    add column links_created integer not null default 0,
    add column links_removed integer not null default 0,
    add column links_failed  integer not null default 0;
