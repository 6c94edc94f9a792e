-- The last four characters of a key, kept when it is made so that operators
-- can tell keys apart (the key itself is stored only as its hash). Keys made
-- before this migration have none.
alter table api_keys add column hint text;
