//! Integration tests of the ingest service against the real PostgreSQL and
//! RabbitMQ, with in-process workers (see `objectsync-testkit`).

mod admin;
mod associations;
mod auth;
mod backup;
mod console;
mod console_figures;
mod console_sessions;
mod corpus;
mod dashboards;
mod delete;
mod fail_process;
mod flood;
mod idempotency;
mod lanes;
mod limits;
mod ops;
mod partitions;
mod plans;
mod processes;
mod records;
mod requests;
mod slow_clients;
mod stored_values;
mod timeouts;
mod tls;
mod upsert_apply;
mod upsert_checks;
