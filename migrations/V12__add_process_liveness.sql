-- When a worker last received the batch, and when the stale-process monitor
-- first reported it: a process that stays open long after its last delivery
-- is logged once, counted, and eventually failed (see the README's
-- Reliability section).
alter table processes
    add column last_delivery_at timestamptz,
    add column stale_at         timestamptz;
