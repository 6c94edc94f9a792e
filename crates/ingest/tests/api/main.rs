//! Integration tests of the ingest service against the real PostgreSQL and
//! RabbitMQ, with in-process workers (see `objectsync-testkit`).

mod admin;
mod amqps;
mod app_password;
mod app_role;
mod associations;
mod auth;
mod console;
mod console_figures;
mod console_sessions;
mod corpus;
mod dashboards;
mod delete;
mod fail_process;
mod flood;
mod idempotency;
mod inbox;
mod inbox_client;
mod inbox_python;
mod inbox_redelivery;
mod lanes;
mod limits;
mod ops;
mod plans;
mod processes;
mod records;
mod requests;
mod slow_clients;
mod standby;
mod stored_values;
mod timeouts;
mod tls;
mod upsert_apply;
mod upsert_checks;
mod webhooks;
