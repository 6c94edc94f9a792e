-- Associations between object types are symmetric: one row per pair, stored
-- with the smaller type id first.
create table object_associations (
    org_id  bigint  not null,
    type_a  integer not null,
    type_b  integer not null,
    primary key (org_id, type_a, type_b),
    foreign key (org_id, type_a) references object_types (org_id, id) on delete cascade,
    foreign key (org_id, type_b) references object_types (org_id, id) on delete cascade,
    check (type_a <= type_b)
);

create index object_associations_type_b_idx on object_associations (org_id, type_b);
