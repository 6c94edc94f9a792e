-- The open processes of one organization older than a given one: what a
-- worker asks before applying a batch (is any of them in its way?).
create index processes_open_by_org_idx on processes (org_id, id)
    where status in ('queued', 'in_process');
