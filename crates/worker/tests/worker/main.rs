//! Integration tests of the worker's delivery guarantees against the real
//! PostgreSQL and RabbitMQ (see `objectsync-testkit`).

mod blocked;
mod concurrency;
mod dead_letters;
mod delivery;
mod events;
mod fairness;
mod liveness;
mod order;
mod retention;
mod retention_app_role;
mod timeouts;
mod upgrade;
mod webhooks;
mod workers;
