-- Per-organization limits; null takes the setting's default (see the
-- README's "Limits and fairness").
alter table organizations
    add column writes_per_second  double precision,
    add column writes_burst       double precision,
    add column reads_per_second   double precision,
    add column reads_burst        double precision,
    add column max_open_processes integer;
