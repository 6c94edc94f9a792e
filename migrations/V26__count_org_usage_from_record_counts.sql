-- dashboard.org_usage counted each organization's records on every refresh,
-- a scan that grows with the records; record_counts (V25) has the same
-- exact number in a few rows. Same columns, same meaning.
create or replace view dashboard.org_usage as
select o.id                                         as org_id,
       o.name                                       as org_name,
       o.custom_objects_enabled,
       (select coalesce(sum(c.n), 0)::bigint from record_counts c where c.org_id = o.id)
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
