//! Every response the integration tests receive is checked against the
//! generated OpenAPI document: its status must be documented for the
//! operation, and its JSON body must match the documented schema. So the
//! document cannot promise what the server does not answer.
//!
//! Requests are held to it the other way: [`request_schema_verdict`] says
//! whether the document allows a request body, so a test can send bodies
//! the document allows (never refused with 400) and bodies it refuses
//! (always 400).
//!
//! [`Client`] is a `reqwest::Client` whose requests do this on `send`;
//! responses of paths the document does not describe (`/healthz`,
//! `/metrics`, unknown paths) pass unchecked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use reqwest::{IntoUrl, Method};
use serde_json::{Map, Value};

struct Contract {
    doc: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| Contract {
        doc: serde_json::to_value(objectsync_ingest::openapi::document())
            .expect("the OpenAPI document serializes"),
        validators: Mutex::new(HashMap::new()),
    })
}

/// Whether `path` (no query) matches the template `/a/{x}/b`.
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

impl Contract {
    /// What is wrong with the answer, if anything.
    fn check(&self, method: &Method, path: &str, status: u16, body: &[u8]) -> Result<(), String> {
        let Some(paths) = self.doc["paths"].as_object() else {
            return Ok(());
        };
        let method = method.as_str().to_ascii_lowercase();
        let Some((template, op)) = paths
            .iter()
            .filter(|(t, _)| matches(t, path))
            .find_map(|(t, item)| item.get(&method).map(|op| (t, op)))
        else {
            return Ok(());
        };
        let Some(response) = op["responses"].get(status.to_string()) else {
            return Err(format!(
                "status {status} is not documented for {method} {template}"
            ));
        };
        let Some(schema) = response["content"]["application/json"].get("schema") else {
            return Ok(());
        };
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| format!("{method} {template} {status}: the body is not JSON: {e}"))?;
        let key = format!("{method} {template} {status}");
        let validator = self.validator(&key, schema)?;
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{e} at '{}'", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{key}: the body does not match the documented schema: {}\n{body}",
                errors.join("; ")
            ))
        }
    }

    /// Whether the request body schema of `method template` allows `body`.
    fn check_request(&self, method: &str, template: &str, body: &Value) -> Result<(), String> {
        let op = &self.doc["paths"][template][method];
        let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") else {
            return Err(format!(
                "{method} {template} documents no JSON request body"
            ));
        };
        let key = format!("{method} {template} request");
        let validator = self.validator(&key, schema)?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{e} at '{}'", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn validator(&self, key: &str, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let mut cache = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(key) {
            return Ok(v.clone());
        }
        // The schema's `$ref`s point into the document's components: give it
        // them at its root.
        let mut root = match schema {
            Value::Object(m) => m.clone(),
            other => Map::from_iter([("allOf".to_owned(), Value::Array(vec![other.clone()]))]),
        };
        root.insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&Value::Object(root))
            .map_err(|e| format!("{key}: the documented schema does not compile: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(key.to_owned(), validator.clone());
        Ok(validator)
    }
}

/// Whether the document's request body schema of `method` (lower case)
/// on `template` (as the document spells the path, `/v3/processes/{id}`)
/// allows `body`; the error lists what it does not allow.
pub fn request_schema_verdict(method: &str, template: &str, body: &Value) -> Result<(), String> {
    contract().check_request(method, template, body)
}

/// A `reqwest::Client` whose answers are checked against the contract.
#[derive(Clone, Default)]
pub struct Client {
    inner: reqwest::Client,
}

impl Client {
    pub fn get(&self, url: impl IntoUrl) -> Request {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: impl IntoUrl) -> Request {
        self.request(Method::POST, url)
    }

    pub fn put(&self, url: impl IntoUrl) -> Request {
        self.request(Method::PUT, url)
    }

    pub fn request(&self, method: Method, url: impl IntoUrl) -> Request {
        Request {
            inner: self.inner.request(method.clone(), url),
            method,
        }
    }
}

/// A request being built; `send` checks the answer.
pub struct Request {
    inner: reqwest::RequestBuilder,
    method: Method,
}

impl Request {
    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        Self {
            inner: self.inner.header(key, value),
            ..self
        }
    }

    pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> Self {
        Self {
            inner: self.inner.json(json),
            ..self
        }
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        Self {
            inner: self.inner.body(body),
            ..self
        }
    }

    pub fn timeout(self, timeout: Duration) -> Self {
        Self {
            inner: self.inner.timeout(timeout),
            ..self
        }
    }

    /// Sends the request and checks the answer against the contract;
    /// panics, failing the test, when it does not match.
    pub async fn send(self) -> reqwest::Result<reqwest::Response> {
        let resp = self.inner.send().await?;
        let status = resp.status();
        let version = resp.version();
        let headers = resp.headers().clone();
        let path = resp.url().path().to_owned();
        let bytes = resp.bytes().await?;
        if let Err(problem) = contract().check(&self.method, &path, status.as_u16(), &bytes) {
            panic!("answer outside the OpenAPI contract: {problem}");
        }
        let mut rebuilt = http::Response::builder().status(status).version(version);
        if let Some(h) = rebuilt.headers_mut() {
            *h = headers;
        }
        Ok(reqwest::Response::from(
            rebuilt
                .body(bytes)
                .expect("a response rebuilt from its parts"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_paths() {
        assert!(matches("/v3/processes/{processId}", "/v3/processes/7"));
        assert!(!matches("/v3/processes/{processId}", "/v3/processes"));
        assert!(!matches(
            "/v3/processes/{processId}",
            "/v3/processes/7/errors"
        ));
    }

    #[test]
    fn the_contract_refuses_what_it_does_not_promise() {
        let c = contract();
        let get = Method::GET;
        assert!(
            c.check(&get, "/v3/processes/7", 200, br#"{"id": 7}"#)
                .is_err()
        );
        assert!(c.check(&get, "/v3/processes/7", 418, b"{}").is_err());
        let err = br#"{"code": "document_not_found", "message": "Process 7 not found"}"#;
        assert!(c.check(&get, "/v3/processes/7", 404, err).is_ok());
        assert!(c.check(&get, "/healthz", 200, b"whatever").is_ok());
    }
}
