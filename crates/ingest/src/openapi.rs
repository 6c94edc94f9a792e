//! The OpenAPI 3.1 document of `/v3` and `/admin`, generated from the
//! handlers' `#[utoipa::path]` attributes and the request and response
//! types, so it cannot drift from the code (the batch bodies' schemas, read
//! by a hand-written reader, are held to it by `tests/api/requests.rs`). The
//! integration tests validate every response they receive against it, and
//! send request bodies it allows and refuses.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "objectsync",
        description = "Bulk upserts of custom object records, wire-compatible with Brevo's \
            Custom Objects API. Batches are accepted with `202 {processId}` once durable, \
            applied in the background, and followed through `/v3/processes`. Errors are \
            `{\"code\", \"message\"}` with Brevo's codes. In a request body, a key given \
            twice in one object is a 400 (JSON Schema cannot say so), and an integer may be \
            written in any JSON spelling (`7`, `7.0`, `7e0`)."
    ),
    paths(
        crate::api::upsert::upsert,
        crate::api::upsert::delete,
        crate::api::records::list,
        crate::api::associated::list,
        crate::api::processes::list,
        crate::api::processes::get,
        crate::api::processes::errors,
        crate::admin::http::create_org,
        crate::admin::http::create_key,
        crate::admin::keys::list_keys,
        crate::admin::keys::revoke_key,
        crate::admin::http::list_objects,
        crate::admin::http::put_object,
        crate::admin::http::get_limits,
        crate::admin::http::put_limits,
        crate::admin::processes::stale_processes,
        crate::admin::processes::fail_process,
        crate::admin::webhooks::create_webhook,
        crate::admin::webhooks::list_webhooks,
        crate::admin::webhooks::delete_webhook,
    ),
    // Schemas only parameters name (utoipa registers those of bodies and
    // answers by itself).
    components(schemas(crate::api::records::SortOrder)),
    modifiers(&Security, &CommonErrors),
    tags(
        (name = "batches", description = "Upsert and delete records in batches of up to 1,000"),
        (name = "records", description = "Read records and their links"),
        (name = "processes", description = "What happened to each batch"),
        (name = "admin", description = "Organizations, keys, object types, webhooks and processes (header `admin-token`)"),
    )
)]
struct Doc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("api-key"))),
        );
        components.add_security_scheme(
            "adminToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("admin-token"))),
        );
    }
}

/// The answers every operation can give besides its own: 400 for a bad
/// parameter or body, 401 without a
/// valid key or token, 403 for an organization without custom objects
/// (`/v3`), 404 while the admin API is disabled (`/admin`), 429 (rate
/// limits on `/v3`, wrong admin tokens on `/admin`), 500 and 503.
struct CommonErrors;

/// The content of every error answer: `ErrorBody` as JSON.
fn error_body() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build()
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", error_body())
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let mut common = vec![
                ("400", "A bad parameter or body; the message names it"),
                ("401", "Missing or unknown key or token"),
                ("500", "A bug; see the server log"),
                (
                    "503",
                    "Database or broker unavailable, or a database statement timed out; retry later",
                ),
            ];
            let v3 = path.starts_with("/v3");
            if v3 {
                common.push((
                    "403",
                    "Custom objects are not enabled for this organization",
                ));
            } else {
                common.push(("404", "The admin API is disabled (no admin token set)"));
            }
            for op in [&mut item.get, &mut item.post, &mut item.put]
                .into_iter()
                .flatten()
            {
                for (status, description) in &common {
                    op.responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| RefOr::T(error(description)));
                }
                let throttled = if v3 {
                    too_many()
                } else {
                    too_many_wrong_tokens()
                };
                op.responses
                    .responses
                    .entry("429".to_owned())
                    .or_insert_with(|| RefOr::T(throttled));
            }
        }
    }
}

/// The 429 of `/v3`, with the headers that say when to come back.
fn too_many() -> utoipa::openapi::Response {
    let header = |description: &str| {
        utoipa::openapi::header::HeaderBuilder::new()
            .schema(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::Integer)
                    .minimum(Some(0)),
            )
            .description(Some(description))
            .build()
    };
    ResponseBuilder::new()
        .description(
            "Over the organization's rate limit for this class of request (writes: batch \
             upserts and deletes; reads: the rest), or, for a batch, the organization has \
             too many batches waiting to be applied (the backlog cap, `max_open_processes`; \
             the message says which). Nothing was done and nothing was spent; retry after \
             `Retry-After` seconds. Every answer of a rate-limited organization carries the \
             `x-sib-ratelimit-*` headers, in whole seconds rounded up; on a refusal by the \
             backlog cap they describe the cap (limit: the cap, remaining: 0, reset: \
             `Retry-After`).",
        )
        .header(
            "Retry-After",
            header("Seconds until a request would be accepted; the same instant as `x-sib-ratelimit-reset`"),
        )
        .header(
            "x-sib-ratelimit-limit",
            header("Requests the organization may send at once (the bucket's size)"),
        )
        .header(
            "x-sib-ratelimit-remaining",
            header("Requests it would have accepted now"),
        )
        .header(
            "x-sib-ratelimit-reset",
            header(
                "Seconds until `x-sib-ratelimit-remaining` goes up by one (0 when it equals \
                 the limit): when a client that has run out may send again; at most 1000",
            ),
        )
        .content("application/json", error_body())
        .build()
}

/// The 429 of `/admin`: this client address sent too many wrong tokens.
fn too_many_wrong_tokens() -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(
            "This client address sent more than 10 wrong admin tokens in a minute; until it \
             slows down, its requests are refused without their token being checked. Retry \
             after `Retry-After` seconds. Other addresses are not affected.",
        )
        .header(
            "Retry-After",
            utoipa::openapi::header::HeaderBuilder::new()
                .schema(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("Seconds to wait before retrying"))
                .build(),
        )
        .content("application/json", error_body())
        .build()
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// The document as JSON.
pub fn json() -> String {
    document().to_pretty_json().unwrap_or_default()
}

/// `/openapi.json`, served beside the public API.
pub(crate) fn router() -> axum::Router<crate::state::AppState> {
    axum::Router::new().route("/openapi.json", axum::routing::get(serve))
}

/// `GET /openapi.json`: the document generated from the handlers and types,
/// built once.
async fn serve() -> impl axum::response::IntoResponse {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(json);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.as_str(),
    )
}
