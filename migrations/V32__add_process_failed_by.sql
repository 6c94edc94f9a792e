-- Who failed a process by hand: the name an operator gave at the console's
-- login, or with the admin API or CLI. Null when the system failed it (or
-- it did not fail). `completed_at` says when and `error` why.
alter table processes add column failed_by text;
