-- Views over the process tables for BI tools and Grafana. Their names and
-- columns are the stable interface (columns are only ever added), so the
-- tables behind them stay free to change; deploy/grafana/README.md documents
-- them. Every view over processes reads only the open rows (the predicate of
-- processes_open_idx) or the rows that ended in the last 24 hours (V14's
-- processes_completed_at_idx), so a dashboard refreshing every minute costs
-- the same whatever the size of the table.
create schema dashboard;

comment on schema dashboard is
    'Views over the process tables for BI tools; the role objectsync_dashboard reads these and nothing else.';

-- The organizations, for names and for joining the per-minute views, which
-- carry only org_id.
create view dashboard.organizations as
select id                       as org_id,
       name                     as org_name,
       custom_objects_enabled,
       created_at
  from organizations;

comment on view dashboard.organizations is
    'One row per organization: org_id, org_name, custom_objects_enabled, created_at.';

-- The where clause is the predicate of processes_open_idx word for word, so
-- that the planner can prove the index applies and never reads an ended row.
create view dashboard.backlog as
select p.org_id,
       o.name                                                  as org_name,
       p.object_type,
       count(*) filter (where p.status = 'queued')             as queued,
       count(*) filter (where p.status = 'in_process')         as in_process,
       sum(p.records_total)                                    as records_pending,
       extract(epoch from now() - min(p.created_at))::float8   as oldest_open_seconds
  from processes p
  join organizations o on o.id = p.org_id
 where p.status in ('queued', 'in_process')
 group by p.org_id, o.name, p.object_type;

comment on view dashboard.backlog is
    'Open processes (queued or in_process) per organization and object type, now: how many of each, the records they hold, and the age in seconds of the oldest.';

-- completed_at is set when a process ends either way (completed or failed),
-- so "ended in the last 24 hours" is one range on one index.
create view dashboard.throughput_per_minute as
select date_trunc('minute', completed_at)              as minute,
       org_id,
       count(*) filter (where status = 'completed')    as processes_completed,
       count(*) filter (where status = 'failed')       as processes_failed,
       sum(records_processed)                          as records_processed,
       sum(records_created)                            as records_created,
       sum(records_updated)                            as records_updated,
       sum(records_deleted)                            as records_deleted,
       sum(records_failed)                             as records_failed
  from processes
 where completed_at > now() - interval '24 hours'
 group by 1, 2;

comment on view dashboard.throughput_per_minute is
    'Processes that ended in the last 24 hours, per minute of their end and organization: how many completed or failed, and their record outcome counts. Minutes without an ended process have no row.';

-- Two kinds of failure in one list. A rejected record or refused link has a
-- process_errors row with its code. A process that failed as a whole has
-- only its error text, whose details after the first colon or semicolon (a
-- database message, a parser position, advice) would make every failure a
-- group of its own: the text before them names the reason. 80 characters
-- hold the reasons the worker writes (the stale-process one has 63).
create view dashboard.failures_by_code as
select e.org_id,
       o.name                           as org_name,
       'record'                         as level,
       e.code,
       count(*)                         as failures,
       count(distinct e.process_id)     as processes,
       max(p.completed_at)              as last_seen
  from processes p
  join process_errors e on e.org_id = p.org_id and e.process_id = p.id
  join organizations o on o.id = p.org_id
 where p.completed_at > now() - interval '24 hours'
 group by e.org_id, o.name, e.code
union all
select p.org_id,
       o.name,
       'process',
       left(split_part(split_part(coalesce(p.error, 'unknown'), ':', 1), ';', 1), 80),
       count(*),
       count(*),
       max(p.completed_at)
  from processes p
  join organizations o on o.id = p.org_id
 where p.completed_at > now() - interval '24 hours'
   and p.status = 'failed'
 group by p.org_id, o.name, 4;

comment on view dashboard.failures_by_code is
    'Failures of the last 24 hours per organization and code. level record: rows of process_errors (a rejected record or a refused link), code is the rejection code. level process: processes that failed as a whole, code is their error up to its first colon or semicolon (at most 80 characters).';

-- Latency is measured on completed processes only: a failed one ends after
-- its retries ran out, which says how long the retries last, not how fast
-- batches are applied. Percentiles do not add up across organizations, so
-- this view is per minute for the whole service.
create view dashboard.latency as
with ended as (
    select date_trunc('minute', completed_at)                       as minute,
           extract(epoch from completed_at - created_at)::float8    as latency,
           extract(epoch from started_at - created_at)::float8      as queue_lag
      from processes
     where completed_at > now() - interval '24 hours'
       and status = 'completed'
)
select minute,
       count(*)                                                 as processes_completed,
       percentile_cont(0.5)  within group (order by latency)    as latency_p50_seconds,
       percentile_cont(0.9)  within group (order by latency)    as latency_p90_seconds,
       percentile_cont(0.99) within group (order by latency)    as latency_p99_seconds,
       max(latency)                                             as latency_max_seconds,
       percentile_cont(0.5)  within group (order by queue_lag)  as queue_lag_p50_seconds,
       percentile_cont(0.99) within group (order by queue_lag)  as queue_lag_p99_seconds,
       max(queue_lag)                                           as queue_lag_max_seconds
  from ended
 group by minute;

comment on view dashboard.latency is
    'Processes completed in the last 24 hours, per minute of completion: percentiles of the time from the 202 to completed, and of the queue lag (202 to first pick-up by a worker), in seconds.';

-- records_stored is an exact count, one index scan of each organization's
-- records: PostgreSQL keeps no per-organization count, and an estimate from
-- the planner's statistics is per table. Cheap for a BI refresh, but it grows
-- with the records; a filter on org_id counts only that organization.
create view dashboard.org_usage as
select o.id                                         as org_id,
       o.name                                       as org_name,
       o.custom_objects_enabled,
       (select count(*) from records r where r.org_id = o.id)
                                                    as records_stored,
       coalesce(b.processes_open, 0)                as processes_open,
       coalesce(d.processes_ended, 0)               as processes_ended_24h,
       coalesce(d.processes_failed, 0)              as processes_failed_24h,
       coalesce(d.records_processed, 0)             as records_processed_24h,
       coalesce(d.records_failed, 0)                as records_failed_24h
  from organizations o
  left join (select org_id,
                    count(*)                                    as processes_ended,
                    count(*) filter (where status = 'failed')   as processes_failed,
                    sum(records_processed)                      as records_processed,
                    sum(records_failed)                         as records_failed
               from processes
              where completed_at > now() - interval '24 hours'
              group by org_id) d on d.org_id = o.id
  left join (select org_id,
                    count(*)                                    as processes_open
               from processes
              where status in ('queued', 'in_process')
              group by org_id) b on b.org_id = o.id;

comment on view dashboard.org_usage is
    'One row per organization: records stored now (an exact count), open processes now, and processes ended, failed, records processed and records failed in the last 24 hours.';

-- The role BI tools log in through (by a login role made a member of it).
-- Roles belong to the whole cluster, not to this database: another database
-- of the cluster may have created it already, or (tests migrate many
-- databases at once) be creating it at this moment, which ends in
-- duplicate_object or, past the check, in unique_violation.
do $$
begin
    if not exists (select from pg_roles where rolname = 'objectsync_dashboard') then
        create role objectsync_dashboard nologin;
    end if;
exception
    when duplicate_object or unique_violation then
        null;
end
$$;

-- Grants belong to this database and are idempotent. The views run with
-- their owner's privileges, so reading them needs no grant on the tables;
-- and PUBLIC holds no privilege on any table here, so the role can read the
-- views and no table.
grant usage on schema dashboard to objectsync_dashboard;
grant select on all tables in schema dashboard to objectsync_dashboard;

-- A view a later migration adds here (created by the same user as this one)
-- is readable by the role without a grant of its own.
alter default privileges in schema dashboard grant select on tables to objectsync_dashboard;
