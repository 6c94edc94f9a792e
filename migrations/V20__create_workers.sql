-- The workers running now, for the console: each upserts its row every
-- heartbeat (`worker.heartbeat_secs`) with what it is applying, and deletes
-- it when it stops gracefully. A crashed worker's row stops being seen:
-- readers ignore rows not seen for three heartbeats, and a starting worker
-- deletes those not seen for an hour.
create table workers (
    id          uuid         primary key,
    host        text         not null,
    pid         integer      not null,
    prefetch    integer      not null,
    started_at  timestamptz  not null,
    seen_at     timestamptz  not null,
    -- [{"org_id": 1, "process_id": 2, "since": "2025-01-01T00:00:00Z"}, ...]
    applying    jsonb        not null default '[]'
);
