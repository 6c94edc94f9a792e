//! What the public API and the admin API share to read a request and
//! write an answer: bodies (`body`), paths (`path`), query strings
//! (`params`), timestamps. Handlers of either use it; it uses neither.

mod body;
mod params;
mod path;

pub use body::{body_bytes, check_media_type, json_body, json_request, too_large};
pub use params::Params;
pub(crate) use path::{PathParts, org_id};

/// RFC 3339 in UTC with milliseconds, the form every timestamp is given in.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
