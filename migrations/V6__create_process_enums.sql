create type process_name as enum ('OBJECT_RECORDS_UPSERT', 'OBJECT_RECORDS_DELETE');

create type process_status as enum ('queued', 'in_process', 'completed', 'failed');
