-- The queue a batch was published to (express or one of the bulk queues):
-- ingest reads it on the organization's newest open processes to route
-- its next batch, so that an organization with a backlog keeps one bulk
-- queue and never has batches in two of them. Null for a batch accepted
-- before this column: it went to the organization's hash partition.
alter table processes add column queue text;
