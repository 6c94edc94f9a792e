-- dashboard.org_usage counts what an organization stores with joins to
-- per-organization sums instead of a subquery per row: the same columns,
-- the same numbers. Citus refuses a correlated subquery over a distributed
-- table beside a reference table (`organizations`), and plans these joins
-- (each sum grouped by org_id runs on the organization's shard). On plain
-- PostgreSQL a filter on org_id reaches every sum, as it did the
-- subqueries.
create or replace view dashboard.org_usage as
select o.id                                         as org_id,
       o.name                                       as org_name,
       o.custom_objects_enabled,
       coalesce(r.records_stored, 0)                as records_stored,
       coalesce(b.processes_open, 0)                as processes_open,
       coalesce(d.processes_ended, 0)               as processes_ended_24h,
       coalesce(d.processes_failed, 0)              as processes_failed_24h,
       coalesce(d.records_processed, 0)             as records_processed_24h,
       coalesce(d.records_failed, 0)                as records_failed_24h,
       coalesce(s.processes_stored, 0)              as processes_stored
  from organizations o
  left join (select org_id, sum(n)::bigint as records_stored
               from record_counts
              group by org_id) r on r.org_id = o.id
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
              group by org_id) b on b.org_id = o.id
  left join (select org_id, sum(n)::bigint as processes_stored
               from process_counts
              group by org_id) s on s.org_id = o.id;
