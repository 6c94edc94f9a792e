-- dashboard.org_usage gains processes_stored: the organization's processes
-- kept now, from process_counts (V27), which counts what is kept, not what
-- was ever accepted: the retention sweeper subtracts the processes of each
-- partition it drops in the transaction that drops it (dropping a table
-- fires no delete trigger). The same number as GET /v3/processes' count.
-- Columns are only ever added: this one comes last.
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
       coalesce(d.records_failed, 0)                as records_failed_24h,
       (select coalesce(sum(c.n), 0)::bigint from process_counts c where c.org_id = o.id)
                                                    as processes_stored
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
    'One row per organization: records stored now (an exact count), open processes now, processes ended, failed, records processed and records failed in the last 24 hours, and processes stored now (an exact count of the processes kept: those removed by retention are not counted).';

comment on table process_counts is
    'Exact count of each organization''s processes kept now (sum n over the 16 slots): kept by statement triggers on insert and delete, and by the retention sweeper for each partition it drops.';
