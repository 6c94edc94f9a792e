//! The request-level checks of an upsert body, made without building the
//! records: attribute values are skipped over (only counted), and the
//! `records` array is kept as the raw JSON it arrived as, so that ingest can
//! put it in the message as is. Parsing a 1 MiB batch into values and
//! writing it out again was most of ingest's CPU time.

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::checks::{parse_associations, parse_identifiers};
use crate::error::RequestError;
use crate::limits::{MAX_ATTRIBUTES, MAX_RECORDS_PER_BATCH};

/// An upsert body that passed every request-level check.
#[derive(Debug, Clone, Copy)]
pub struct RawUpsert<'a> {
    /// The `records` array, verbatim.
    pub records: &'a RawValue,
    /// How many records it holds.
    pub len: usize,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    records: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    identifiers: Option<&'a RawValue>,
    #[serde(borrow)]
    attributes: Option<&'a RawValue>,
    #[serde(borrow)]
    associations: Option<&'a RawValue>,
}

/// The number of entries of a JSON object, values unread.
struct KeyCount(usize);

impl<'de> Deserialize<'de> for KeyCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> Visitor<'de> for Counter {
            type Value = KeyCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyCount, A::Error> {
                let mut n = 0;
                while map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value::<IgnoredAny>()?;
                    n += 1;
                }
                Ok(KeyCount(n))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyCount, E> {
                Ok(KeyCount(0))
            }
        }
        d.deserialize_any(Counter)
    }
}

fn small_value(raw: Option<&RawValue>) -> Option<serde_json::Value> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

impl<'a> RawUpsert<'a> {
    /// Applies every request-level check of the contract, in its order.
    pub fn parse(body: &'a [u8]) -> Result<Self, RequestError> {
        let body: Body<'a> = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                RequestError::bad_request("the body must be a JSON object")
            } else {
                RequestError::bad_request(format!("the body is not valid JSON: {e}"))
            }
        })?;
        let records = body
            .records
            .ok_or_else(|| RequestError::bad_request("the body must have a 'records' array"))?;
        let items: Vec<&'a RawValue> = serde_json::from_str(records.get())
            .map_err(|_| RequestError::bad_request("'records' must be an array"))?;
        if items.is_empty() || items.len() > MAX_RECORDS_PER_BATCH {
            return Err(RequestError::out_of_range(format!(
                "'records' must hold 1 to {MAX_RECORDS_PER_BATCH} records, got {}",
                items.len()
            )));
        }
        for (index, item) in items.iter().enumerate() {
            check_record(index, item)?;
        }
        Ok(Self {
            records,
            len: items.len(),
        })
    }
}

fn check_record(index: usize, item: &RawValue) -> Result<(), RequestError> {
    let at = format!("records[{index}]");
    let record: Record<'_> = serde_json::from_str(item.get())
        .map_err(|_| RequestError::invalid(format!("{at} must be a JSON object")))?;
    let attributes = match record.attributes {
        None => 0,
        Some(raw) => {
            serde_json::from_str::<KeyCount>(raw.get())
                .map_err(|_| {
                    RequestError::invalid(format!("{at}.attributes must be a JSON object"))
                })?
                .0
        }
    };
    if attributes > MAX_ATTRIBUTES {
        return Err(RequestError::out_of_range(format!(
            "{at} has {attributes} attributes; at most {MAX_ATTRIBUTES} are allowed"
        )));
    }
    parse_associations(&at, small_value(record.associations))?;
    parse_identifiers(
        &format!("{at}.identifiers"),
        small_value(record.identifiers),
    )?;
    Ok(())
}
