//! Batch metadata in AMQP headers: [`BatchMeta`] to and from a `FieldTable`.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use objectsync_model::{BatchMeta, HeaderValue, MetaError};

/// The headers that carry `meta`.
pub fn headers(meta: &BatchMeta) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in meta.to_headers() {
        let value = match value {
            HeaderValue::Int(v) => AMQPValue::LongLongInt(v),
            HeaderValue::Text(t) => AMQPValue::LongString(t.into()),
        };
        table.insert(name.into(), value);
    }
    table
}

/// The value of header `name`, if it has a usable type.
pub fn header(props: &BasicProperties, name: &str) -> Option<HeaderValue> {
    let value = props.headers().as_ref()?.inner().get(name)?;
    Some(match value {
        AMQPValue::ShortShortInt(v) => HeaderValue::Int(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => HeaderValue::Int(i64::from(*v)),
        AMQPValue::ShortInt(v) => HeaderValue::Int(i64::from(*v)),
        AMQPValue::ShortUInt(v) => HeaderValue::Int(i64::from(*v)),
        AMQPValue::LongInt(v) => HeaderValue::Int(i64::from(*v)),
        AMQPValue::LongUInt(v) => HeaderValue::Int(i64::from(*v)),
        AMQPValue::LongLongInt(v) => HeaderValue::Int(*v),
        AMQPValue::LongString(s) => HeaderValue::Text(String::from_utf8_lossy(s.as_bytes()).into()),
        AMQPValue::ShortString(s) => HeaderValue::Text(s.as_str().to_owned()),
        _ => return None,
    })
}

/// The metadata of a delivered or dead-lettered batch.
pub fn read_meta(props: &BasicProperties) -> Result<BatchMeta, MetaError> {
    BatchMeta::from_headers(|name| header(props, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use objectsync_model::{ObjectTypeName, ProcessKind};

    #[test]
    fn metadata_round_trips_through_a_field_table() {
        let meta = BatchMeta {
            org_id: objectsync_model::OrgId(1),
            process_id: objectsync_model::ProcessId(2),
            kind: ProcessKind::Upsert,
            object_type: ObjectTypeName::parse("garage").unwrap(),
            xact_id: 99,
            enqueued_at: Utc.timestamp_millis_opt(1_000).unwrap(),
            request_id: None,
        };
        let props = BasicProperties::default().with_headers(headers(&meta));
        assert_eq!(read_meta(&props).unwrap(), meta);
    }
}
