-- What a batch waits for in acceptance order, for operators and for the
-- stale-process monitor (see the README's Reliability section):
--   waiting_for    the oldest older open process of the organization it has
--                  waited for longer than a second, or until it gave way;
--                  cleared when the process ends
--   waiting_since  since when it waits for that one
--   gave_way_at    when a copy of its message last went to the end of its
--                  queue (it gave its place back)
--   came_round_at  the gave_way_at of the copy delivered last: everything
--                  that was waiting in that queue then has been delivered
alter table processes
    add column waiting_for   bigint,
    add column waiting_since timestamptz,
    add column gave_way_at   timestamptz,
    add column came_round_at timestamptz;
