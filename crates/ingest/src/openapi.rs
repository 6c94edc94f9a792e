//! The OpenAPI 3.1 document of `/v3` and `/admin`, generated from the
//! handlers' `#[utoipa::path]` attributes and the request and response
//! types, so it cannot drift from the code. The integration tests validate
//! every response they receive against it.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "objectsync",
        description = "Bulk upserts of custom object records, wire-compatible with Brevo's \
            Custom Objects API. Batches are accepted with `202 {processId}` once durable, \
            applied in the background, and followed through `/v3/processes`. Errors are \
            `{\"code\", \"message\"}` with Brevo's codes."
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
        crate::admin::http::list_objects,
        crate::admin::http::put_object,
        crate::admin::http::stale_processes,
    ),
    modifiers(&Security),
    tags(
        (name = "batches", description = "Upsert and delete records in batches of up to 1,000"),
        (name = "records", description = "Read records and their links"),
        (name = "processes", description = "What happened to each batch"),
        (name = "admin", description = "Organizations, keys and object types (header `admin-token`)"),
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

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// The document as JSON.
pub fn json() -> String {
    document().to_pretty_json().unwrap_or_default()
}
