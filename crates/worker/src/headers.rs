//! Reading the headers RabbitMQ adds to redelivered and dead-lettered
//! messages, and every header as JSON for the dead letters operators read.

use lapin::BasicProperties;
use lapin::types::AMQPValue;
#[cfg(test)]
use lapin::types::FieldTable;
use serde_json::Value;

fn header<'a>(props: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    props.headers().as_ref()?.inner().get(name)
}

fn as_u64(value: &AMQPValue) -> Option<u64> {
    match value {
        AMQPValue::ShortShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongUInt(v) => Some(u64::from(*v)),
        AMQPValue::ShortShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}

fn as_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Deliveries of earlier copies of a message a worker put back at the end
/// of the queue (see `giveway`), which the broker does not count.
pub(crate) const PRIOR_DELIVERIES: &str = "x-objectsync-prior-deliveries";

fn count(props: &BasicProperties, name: &str) -> u32 {
    header(props, name)
        .and_then(as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

/// Deliveries before this one: the broker's `x-delivery-count` (set by
/// quorum queues on redelivery; absent on the first) plus those of earlier
/// copies.
pub(crate) fn previous_deliveries(props: &BasicProperties) -> u32 {
    count(props, "x-delivery-count").saturating_add(count(props, PRIOR_DELIVERIES))
}

/// Why the broker dead-lettered a message: the `reason` of the newest
/// `x-death` entry (`rejected`, `delivery_limit`, `expired`, ...).
pub(crate) fn death_reason(props: &BasicProperties) -> Option<String> {
    let AMQPValue::FieldArray(deaths) = header(props, "x-death")? else {
        return None;
    };
    let AMQPValue::FieldTable(first) = deaths.as_slice().first()? else {
        return None;
    };
    first.inner().get("reason").and_then(as_text)
}

/// The message's headers as JSON, for operators reading a dead letter:
/// tables as objects, arrays as arrays, numbers as numbers, text (and
/// bytes) as strings; `None` if it has none. NUL characters, which
/// PostgreSQL's `jsonb` refuses, become U+FFFD.
pub(crate) fn to_json(props: &BasicProperties) -> Option<Value> {
    props.headers().as_ref().map(table_json)
}

fn table_json(table: &lapin::types::FieldTable) -> Value {
    let map = table
        .inner()
        .iter()
        .map(|(k, v)| (clean(k.as_str()), value_json(v)))
        .collect();
    Value::Object(map)
}

fn value_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(v) => Value::from(*v),
        AMQPValue::ShortShortUInt(v) => Value::from(*v),
        AMQPValue::ShortInt(v) => Value::from(*v),
        AMQPValue::ShortUInt(v) => Value::from(*v),
        AMQPValue::LongInt(v) => Value::from(*v),
        AMQPValue::LongUInt(v) => Value::from(*v),
        AMQPValue::LongLongInt(v) => Value::from(*v),
        AMQPValue::Timestamp(v) => Value::from(*v),
        AMQPValue::Float(v) => Value::from(f64::from(*v)),
        AMQPValue::Double(v) => Value::from(*v),
        AMQPValue::DecimalValue(d) => {
            Value::from(f64::from(d.value) / 10f64.powi(i32::from(d.scale)))
        }
        AMQPValue::ShortString(s) => Value::String(clean(s.as_str())),
        AMQPValue::LongString(s) => Value::String(clean(&String::from_utf8_lossy(s.as_bytes()))),
        AMQPValue::ByteArray(b) => Value::String(clean(&String::from_utf8_lossy(b.as_slice()))),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_json).collect()),
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::Void => Value::Null,
    }
}

/// `text` without NUL characters, which PostgreSQL's `text` and `jsonb`
/// refuse.
pub(crate) fn clean(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

/// The `x-delivery-count` header as a test would see it, for unit tests.
#[cfg(test)]
fn with_count(n: i64) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("x-delivery-count".into(), AMQPValue::LongLongInt(n));
    BasicProperties::default().with_headers(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::FieldArray;

    #[test]
    fn delivery_count_defaults_to_zero() {
        assert_eq!(previous_deliveries(&BasicProperties::default()), 0);
        assert_eq!(previous_deliveries(&with_count(3)), 3);
    }

    #[test]
    fn death_reason_reads_the_newest_entry() {
        let mut death = FieldTable::default();
        death.insert(
            "reason".into(),
            AMQPValue::LongString("delivery_limit".into()),
        );
        let mut deaths = FieldArray::default();
        deaths.push(AMQPValue::FieldTable(death));
        let mut headers = FieldTable::default();
        headers.insert("x-death".into(), AMQPValue::FieldArray(deaths));
        let props = BasicProperties::default().with_headers(headers);
        assert_eq!(death_reason(&props).as_deref(), Some("delivery_limit"));
        assert_eq!(death_reason(&BasicProperties::default()), None);
        assert_eq!(
            to_json(&props),
            Some(serde_json::json!({"x-death": [{"reason": "delivery_limit"}]}))
        );
    }

    #[test]
    fn headers_read_as_json_without_nul_characters() {
        let mut headers = FieldTable::default();
        headers.insert("count".into(), AMQPValue::LongLongInt(3));
        headers.insert(
            "raw".into(),
            AMQPValue::LongString(b"a\0b\xff".to_vec().into()),
        );
        headers.insert("none".into(), AMQPValue::Void);
        let props = BasicProperties::default().with_headers(headers);
        assert_eq!(
            to_json(&props),
            Some(serde_json::json!({"count": 3, "raw": "a\u{fffd}b\u{fffd}", "none": null}))
        );
        assert_eq!(to_json(&BasicProperties::default()), None);
    }
}
