//! What the public API and the admin API share to read a request and
//! write an answer: bodies (`body`), paths (`path`), query strings
//! (`params`), timestamps. Handlers of either use it; it uses neither.

mod body;
mod params;
mod path;

pub use body::{body_bytes, check_media_type, json_body, json_request, too_large};
pub use params::Params;
pub(crate) use path::{PathParts, org_id};

pub use objectsync_model::report::timestamp;
