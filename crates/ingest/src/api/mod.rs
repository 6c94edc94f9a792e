//! The public API under `/v3`. What its handlers share with the admin API
//! for turning bodies, paths and query strings into clear 4xx answers is
//! in `crate::web`.

pub(crate) mod associated;
mod cursor;
mod extract;
pub(crate) mod processes;
pub(crate) mod records;
pub(crate) mod schema;
pub(crate) mod upsert;

use axum::Router;
use axum::routing::{get, post};

pub use crate::error::ErrorBody;
pub use schema::Accepted;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/objects/{object_type}/batch/upsert",
            post(upsert::upsert),
        )
        .route(
            "/v3/objects/{object_type}/batch/delete",
            post(upsert::delete),
        )
        .route("/v3/objects/{object_type}/records", get(records::list))
        .route(
            "/v3/objects/{object_type}/associated-records",
            get(associated::list),
        )
        .route("/v3/processes", get(processes::list))
        .route("/v3/processes/{process_id}", get(processes::get))
        .route("/v3/processes/{process_id}/errors", get(processes::errors))
}
