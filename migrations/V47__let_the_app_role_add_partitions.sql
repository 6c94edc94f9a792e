-- The retention sweeper of the workers adds the partitions of processes
-- and process_errors ahead of the ids being drawn with
-- processes_add_partition (V43), and the workers run as the app role of
-- V39, which may create and attach no table. The function runs with the
-- rights of its owner (the schema's owner, who ran V43) instead, with a
-- search_path of its own so that no caller's object is found in its place,
-- and only the app role (and the owner) may call it. Its bounds are numbers:
-- it creates the two partitions of one range of ids and nothing else.
alter function processes_add_partition(bigint, bigint)
    security definer
    set search_path = public, pg_temp;

revoke execute on function processes_add_partition(bigint, bigint) from public;
grant execute on function processes_add_partition(bigint, bigint) to objectsync_app;
