-- One token bucket per organization and class of request (writes, reads),
-- shared by every ingest replica: a request takes a token in one statement,
-- so the limit holds for the organization as a whole. Rows are rewritten on
-- every request; the low fillfactor keeps those updates on their page.
create table rate_buckets (
    org_id      bigint           not null references organizations (id) on delete cascade,
    class       text             not null,
    tokens      double precision not null,
    updated_at  timestamptz      not null,
    allowed     boolean          not null,
    primary key (org_id, class)
) with (fillfactor = 50);
