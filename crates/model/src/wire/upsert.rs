//! Reading an upsert body: every request-level check of the contract, and
//! the records as the worker applies them, from one function.
//!
//! Attribute values are kept as the raw JSON they arrived as. They are judged
//! per record by the worker against the schema of the moment, so a bad value
//! (of the wrong type, or one no JSON reader can hold: `1e400`, a lone
//! surrogate, nesting past 128 levels) rejects its record, not the batch;
//! keys the type does not define are never read at all, and a key that is
//! not valid Unicode (a lone surrogate escape) cannot name an attribute, so
//! it is one of those.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::identifiers::{Joined, associations, identifiers};
use super::json::{Entries, duplicate, is_null, object, reason};
use super::{AssociationIn, Identifiers};
use crate::error::RequestError;
use crate::limits::{MAX_ATTRIBUTES, MAX_RECORDS_PER_BATCH};

/// One record of an upsert, shape-checked, borrowing from the body.
#[derive(Debug, Clone)]
pub struct RecordIn<'a> {
    pub identifiers: Identifiers,
    /// Attribute keys (each once) and their values as sent, in request order.
    pub attributes: Vec<(Cow<'a, str>, &'a RawValue)>,
    pub associations: Vec<AssociationIn>,
}

/// The body of `POST /v3/objects/{object_type}/batch/upsert`, accepted.
#[derive(Debug, Clone)]
pub struct Upsert<'a> {
    pub records: Vec<RecordIn<'a>>,
}

/// The body as UTF-8, or the 400 for it.
pub(crate) fn utf8(body: &[u8]) -> Result<&str, RequestError> {
    std::str::from_utf8(body)
        .map_err(|e| RequestError::bad_request(format!("the body is not valid UTF-8: {e}")))
}

/// The top-level object of a body, or the 400 for it.
pub(crate) fn top_level(text: &str) -> Result<Entries<'_>, RequestError> {
    serde_json::from_str::<Entries<'_>>(text).map_err(|e| {
        if e.is_data() {
            RequestError::bad_request("the body must be a JSON object")
        } else {
            RequestError::bad_request(format!("the body is not valid JSON: {e}"))
        }
    })
}

/// The member `name` of `entries`, refusing it twice; `null` counts as absent.
pub(crate) fn member<'a>(
    entries: &Entries<'a>,
    name: &str,
    twice: impl FnOnce() -> RequestError,
) -> Result<Option<&'a RawValue>, RequestError> {
    let mut found = entries.0.iter().filter(|(k, _)| k == name).map(|(_, v)| *v);
    let first = found.next();
    if found.next().is_some() {
        return Err(twice());
    }
    Ok(first.filter(|v| !is_null(v)))
}

/// The body read in one pass: each record's members, values unread, and
/// its attributes' entries, values unread. Any body this refuses is read
/// again by the careful path, which says why; any body it reads, the
/// careful path would read the same way (both use the same grammar: values
/// unread are skipped by serde_json's `ignore_value`).
struct OnePass<'a> {
    records: Option<Vec<RecordPass<'a>>>,
}

/// One record read in the same pass: its other members, values unread, and
/// its `attributes` object's entries (`None` when absent or `null`).
struct RecordPass<'a> {
    entries: Entries<'a>,
    attributes: Option<Entries<'a>>,
}

impl<'de> serde::Deserialize<'de> for RecordPass<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Record;
        impl<'de> serde::de::Visitor<'de> for Record {
            type Value = RecordPass<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RecordPass<'de>, A::Error> {
                // As `Entries` reads an object, but `attributes` read too.
                let mut out = Vec::with_capacity(4);
                let mut unreadable = Vec::new();
                let mut attributes = None;
                while let Some(key) = map.next_key::<&'de RawValue>()? {
                    match super::json::read_key(key) {
                        Some(key) if key == "attributes" => {
                            if attributes.is_some() {
                                // The careful path names it.
                                return Err(serde::de::Error::custom("attributes twice"));
                            }
                            attributes = Some(map.next_value::<Option<Entries<'de>>>()?);
                        }
                        Some(key) => out.push((key, map.next_value::<&'de RawValue>()?)),
                        None => {
                            map.next_value::<&'de RawValue>()?;
                            unreadable.push(key);
                        }
                    }
                }
                Ok(RecordPass {
                    entries: Entries(out, unreadable),
                    attributes: attributes.flatten(),
                })
            }
        }
        d.deserialize_map(Record)
    }
}

impl<'de> serde::Deserialize<'de> for OnePass<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> serde::de::Visitor<'de> for Top {
            type Value = OnePass<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OnePass<'de>, A::Error> {
                let mut records = None;
                while let Some(super::json::Text(key)) = map.next_key()? {
                    if key == "records" {
                        if records.is_some() {
                            return Err(serde::de::Error::custom("records twice"));
                        }
                        records = Some(map.next_value::<Option<Vec<RecordPass<'de>>>>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(OnePass {
                    records: records.flatten(),
                })
            }
        }
        d.deserialize_map(Top)
    }
}

impl<'a> Upsert<'a> {
    /// Reads a request body and applies every request-level check, in the
    /// order the contract lists them. Ingest calls this to decide between a
    /// 4xx and a 202, and the worker calls it on the same bytes to apply
    /// them, so the two can never disagree.
    pub fn decode(body: &'a [u8]) -> Result<Self, RequestError> {
        let text = utf8(body)?;
        // Most bodies are fine: read them in one pass, and leave it to the
        // careful path to say what is wrong with the others.
        if let Ok(OnePass {
            records: Some(items),
        }) = serde_json::from_str::<OnePass<'a>>(text)
            && !items.is_empty()
            && items.len() <= MAX_RECORDS_PER_BATCH
        {
            let records = items
                .into_iter()
                .enumerate()
                .map(|(index, r)| record_from(index, r.entries, Read(r.attributes)))
                .collect::<Result<_, _>>()?;
            return Ok(Self { records });
        }
        Self::decode_carefully(text)
    }

    /// The careful path alone, every refusal named: what [`Upsert::decode`]
    /// falls back to. Public so that tests can check the two agree.
    pub fn decode_carefully(text: &'a str) -> Result<Self, RequestError> {
        let top = top_level(text)?;
        let records = member(&top, "records", || {
            RequestError::bad_request("the body has 'records' twice")
        })?
        .ok_or_else(|| RequestError::bad_request("the body must have a 'records' array"))?;
        let items = super::json::array(records)
            .map_err(|_| RequestError::bad_request("'records' must be an array"))?;
        if items.is_empty() || items.len() > MAX_RECORDS_PER_BATCH {
            return Err(RequestError::out_of_range(format!(
                "'records' must hold 1 to {MAX_RECORDS_PER_BATCH} records, got {}",
                items.len()
            )));
        }
        let records = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| record(index, item))
            .collect::<Result<_, _>>()?;
        Ok(Self { records })
    }
}

fn record(index: usize, raw: &RawValue) -> Result<RecordIn<'_>, RequestError> {
    let entries = object(raw).map_err(|e| {
        let at = format!("records[{index}]");
        if e.is_data() {
            RequestError::invalid(format!("{at} must be a JSON object"))
        } else {
            RequestError::invalid(format!("{at} is not readable: {}", reason(&e)))
        }
    })?;
    record_from(index, entries, Unread)
}

/// A record's `attributes` member: read with the record in one pass, or
/// still to be read from the record's entries.
enum Attrs<'a> {
    Read(Option<Entries<'a>>),
    Unread,
}
use Attrs::{Read, Unread};

/// `records[{0}]`, written out only for a message.
struct At(usize);

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "records[{}]", self.0)
    }
}

fn record_from<'a>(
    index: usize,
    entries: Entries<'a>,
    attrs: Attrs<'a>,
) -> Result<RecordIn<'a>, RequestError> {
    let at = At(index);
    let twice = |name: &str| RequestError::invalid(format!("{at} has '{name}' twice"));
    // Members twice are refused before any member is read, as they come.
    let raw_attributes = match &attrs {
        Read(_) => None,
        Unread => member(&entries, "attributes", || twice("attributes"))?,
    };
    let raw_associations = member(&entries, "associations", || twice("associations"))?;
    let raw_identifiers = member(&entries, "identifiers", || twice("identifiers"))?;
    let read = match (attrs, raw_attributes) {
        (Read(attrs), _) => attrs,
        (Unread, None) => None,
        (Unread, Some(raw)) => Some(object(raw).map_err(|e| {
            if e.is_data() {
                RequestError::invalid(format!("{at}.attributes must be a JSON object"))
            } else {
                RequestError::invalid(format!("{at}.attributes is not readable: {}", reason(&e)))
            }
        })?),
    };
    let attributes = match read {
        None => Vec::new(),
        Some(attrs) => {
            if attrs.len() > MAX_ATTRIBUTES {
                return Err(RequestError::out_of_range(format!(
                    "{at} has {} attributes; at most {MAX_ATTRIBUTES} are allowed",
                    attrs.len()
                )));
            }
            if let Some(key) = duplicate(&attrs) {
                return Err(RequestError::invalid(format!(
                    "{at}.attributes has '{key}' twice"
                )));
            }
            attrs.0
        }
    };
    let associations = associations(&at, raw_associations)?;
    let identifiers = identifiers(&Joined(&at, ".identifiers"), raw_identifiers)?;
    Ok(RecordIn {
        identifiers,
        attributes,
        associations,
    })
}
