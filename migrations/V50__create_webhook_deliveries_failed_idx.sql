-- Failed webhook deliveries oldest first: the retention sweeper removes
-- those that failed longer ago than `RETENTION__FAILED_DELIVERIES_SECS`,
-- a bounded number per statement, reading only failed rows (pending ones,
-- the rest of the table, are left out of the index).
create index webhook_deliveries_failed_idx
    on webhook_deliveries (failed_at) where failed_at is not null;
