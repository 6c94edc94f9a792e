-- Dead letters that were replayed or discarded are removed after the
-- retention time (RETENTION__DEAD_LETTERS_SECS) by the sweeper, which
-- finds them through this index, oldest resolution first, a bounded number
-- per statement; the unresolved ones stay until an operator acts. Dead
-- letters are few, so it is built in the migration's transaction.
create index dead_letters_resolved_idx on dead_letters (resolved_at)
    where resolution is not null;
