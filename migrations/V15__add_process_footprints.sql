-- What each batch touches (see objectsync_model::wire::Footprint), written
-- by ingest when it accepts the batch, read by workers to apply an
-- organization's batches in processId order wherever the order could show,
-- and cleared once the process is final. A row without a footprint (accepted
-- before this migration) conflicts with every batch.
alter table processes
    add column footprint_keys  bigint[],
    add column footprint_wide  boolean not null default true,
    add column footprint_links boolean not null default true;
