//! Strict checking of attribute values against their type.
//!
//! Typing is strict on purpose: `"12"` is not a number and `1` is not a
//! boolean, because silently coercing values is how bulk syncs corrupt data.
//! Values are returned normalized as they will be stored (date-times in UTC).

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Timelike, Utc};
use serde_json::Value;

use crate::limits::MAX_TEXT_CHARS;
use crate::schema::{AttributeDef, AttributeType};

/// Why a value does not fit its attribute. The message is shown to clients
/// as is, prefixed with the attribute key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError(msg.into()))
}

/// Checks `value` against `attr` and returns the value to store: the value
/// itself, borrowed, or (for date-times) its normalized form.
///
/// `null` is accepted for every type: it clears the attribute.
pub fn check_value<'a>(
    attr: &AttributeDef,
    value: &'a Value,
) -> Result<Cow<'a, Value>, ValueError> {
    if value.is_null() {
        return Ok(Cow::Borrowed(value));
    }
    match attr.kind {
        AttributeType::Text => text(value).map(|_| ()),
        AttributeType::Number => match value {
            Value::Number(_) => Ok(()),
            _ => fail(format!("expected a number, got {}", describe(value))),
        },
        AttributeType::Boolean => match value {
            Value::Bool(_) => Ok(()),
            _ => fail(format!("expected true or false, got {}", describe(value))),
        },
        AttributeType::Date => return date(value),
        AttributeType::Url => url(value),
        AttributeType::Category => option_key(value, attr).map(|_| ()),
        AttributeType::MultipleCategory => multiple(value, attr),
    }
    .map(|()| Cow::Borrowed(value))
}

/// Whether a string value, sent without escapes (`s` is its text between
/// the quotes), is stored exactly as sent: the common case, decided without
/// reading it into a [`Value`]. `false` means "check it with
/// [`check_value`]", which says why it is refused, or normalizes it.
pub fn plain_str_accepted(attr: &AttributeDef, s: &str) -> bool {
    match attr.kind {
        AttributeType::Text => text_ok(s),
        AttributeType::Url => text_ok(s) && url_ok(s),
        AttributeType::Category => !s.contains('\0') && attr.has_option(s),
        // `YYYY-MM-DD` only; a date-time may need its offset moved.
        AttributeType::Date => s.len() == 10 && plain_date(s) == Some(true),
        _ => false,
    }
}

fn text_ok(s: &str) -> bool {
    !s.contains('\0') && (s.len() <= MAX_TEXT_CHARS || s.chars().count() <= MAX_TEXT_CHARS)
}

fn url_ok(s: &str) -> bool {
    url::Url::parse(s)
        .is_ok_and(|u| (u.scheme() == "http" || u.scheme() == "https") && u.has_host())
}

/// A 10-character `s`: `Some(true)` a date of years 0001-9999 in the shape
/// `YYYY-MM-DD`, `Some(false)` one of another year, `None` not a date.
fn plain_date(s: &str) -> Option<bool> {
    let shape = s.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        _ => b.is_ascii_digit(),
    });
    match s.parse::<NaiveDate>() {
        Ok(d) if shape => Some((1..=9999).contains(&d.year())),
        _ => None,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A string that PostgreSQL can store: `text` and `jsonb` both refuse NUL.
fn storable_str(value: &Value) -> Result<&str, ValueError> {
    match value {
        Value::String(s) if s.contains('\0') => {
            fail("must not contain the NUL character (\\u0000), which cannot be stored")
        }
        Value::String(s) => Ok(s),
        other => fail(format!("expected a string, got {}", describe(other))),
    }
}

fn text(value: &Value) -> Result<&str, ValueError> {
    let s = storable_str(value)?;
    // Byte length bounds the char count from above, so most values skip the count.
    if s.len() > MAX_TEXT_CHARS && s.chars().count() > MAX_TEXT_CHARS {
        return fail(format!("must be at most {MAX_TEXT_CHARS} characters long"));
    }
    Ok(s)
}

/// A `date`: `YYYY-MM-DD`, or an RFC 3339 date-time with an offset, kept in
/// UTC. Years run from 0001 to 9999 (as sent and in UTC: four digits, and
/// no year 0, which the Gregorian calendar does not have and PostgreSQL,
/// JavaScript's `Date.toISOString` and most readers do not round-trip).
/// A leap second (`:60`) is refused rather than moved: the instant it
/// names is not one a reader's clock type can hold.
fn date(value: &Value) -> Result<Cow<'_, Value>, ValueError> {
    let s = storable_str(value)?;
    let expected = || {
        fail(format!(
            "expected a date like 2024-06-15 or a date-time with an offset like 2024-06-15T10:00:00+02:00, got {}",
            describe(value)
        ))
    };
    let year_ok = |year: i32| (1..=9999).contains(&year);
    let years = || {
        fail(format!(
            "years run from 0001 to 9999, got {}",
            describe(value)
        ))
    };
    if s.len() == 10 {
        return match plain_date(s) {
            Some(true) => Ok(Cow::Borrowed(value)),
            Some(false) => years(),
            None => expected(),
        };
    }
    let Ok(dt) = DateTime::parse_from_rfc3339(s) else {
        return expected();
    };
    if dt.nanosecond() >= 1_000_000_000 {
        return fail(format!(
            "a leap second (:60) is not accepted: send :59, or :00 of the next minute; got {}",
            describe(value)
        ));
    }
    let utc = dt.with_timezone(&Utc);
    if !year_ok(dt.year()) || !year_ok(utc.year()) {
        return years();
    }
    let normalized = utc.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    Ok(if normalized == s {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(Value::String(normalized))
    })
}

fn url(value: &Value) -> Result<(), ValueError> {
    let s = text(value)?;
    if url_ok(s) {
        return Ok(());
    }
    match url::Url::parse(s) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.has_host() => Ok(()),
        Ok(_) => fail("expected an absolute http or https URL"),
        Err(e) => fail(format!("expected an absolute http or https URL ({e})")),
    }
}

fn option_key<'a>(value: &'a Value, attr: &AttributeDef) -> Result<&'a str, ValueError> {
    let key = storable_str(value)?;
    if attr.has_option(key) {
        return Ok(key);
    }
    let hint = match attr.options.iter().find(|o| o.label == key) {
        Some(o) => format!(" ('{key}' is the label of option '{}')", o.key),
        None => String::new(),
    };
    fail(format!("'{key}' is not an option key{hint}"))
}

fn multiple(value: &Value, attr: &AttributeDef) -> Result<(), ValueError> {
    let Value::Array(items) = value else {
        return fail(format!(
            "expected an array of option keys, got {}",
            describe(value)
        ));
    };
    let mut keys: Vec<&str> = Vec::with_capacity(items.len());
    for item in items {
        let key = option_key(item, attr)?;
        if keys.contains(&key) {
            return fail(format!("option '{key}' is given twice"));
        }
        keys.push(key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::AttributeKey;
    use crate::schema::CategoryOption;
    use serde_json::json;

    fn attr(kind: AttributeType) -> AttributeDef {
        AttributeDef {
            key: AttributeKey::parse("a").unwrap(),
            label: "A".into(),
            kind,
            options: vec![
                CategoryOption {
                    key: "red".into(),
                    label: "Red".into(),
                },
                CategoryOption {
                    key: "blue".into(),
                    label: "Blue".into(),
                },
            ],
        }
    }

    fn ok(kind: AttributeType, v: Value) -> Value {
        check_value(&attr(kind), &v)
            .unwrap_or_else(|e| panic!("{v} refused: {e}"))
            .into_owned()
    }

    fn bad(kind: AttributeType, v: Value) -> String {
        check_value(&attr(kind), &v)
            .map(|x| panic!("{v} accepted as {x}"))
            .unwrap_err()
            .0
    }

    #[test]
    fn null_clears_every_type() {
        for kind in [
            AttributeType::Text,
            AttributeType::Number,
            AttributeType::Boolean,
            AttributeType::Date,
            AttributeType::Url,
            AttributeType::Category,
            AttributeType::MultipleCategory,
        ] {
            assert_eq!(ok(kind, Value::Null), Value::Null);
        }
    }

    #[test]
    fn text() {
        ok(AttributeType::Text, json!("hello"));
        ok(AttributeType::Text, json!(""));
        ok(AttributeType::Text, json!("é".repeat(MAX_TEXT_CHARS)));
        bad(AttributeType::Text, json!(12));
        assert!(bad(AttributeType::Text, json!("x".repeat(MAX_TEXT_CHARS + 1))).contains("10000"));
        assert!(bad(AttributeType::Text, json!("a\u{0}b")).contains("NUL"));
    }

    #[test]
    fn number() {
        ok(AttributeType::Number, json!(12));
        ok(AttributeType::Number, json!(-1.5e10));
        bad(AttributeType::Number, json!("12"));
        bad(AttributeType::Number, json!(true));
    }

    #[test]
    fn boolean() {
        ok(AttributeType::Boolean, json!(false));
        bad(AttributeType::Boolean, json!(1));
        bad(AttributeType::Boolean, json!("true"));
    }

    #[test]
    fn date() {
        assert_eq!(
            ok(AttributeType::Date, json!("2024-06-15")),
            json!("2024-06-15")
        );
        assert_eq!(
            ok(AttributeType::Date, json!("2024-06-15T10:00:00+02:00")),
            json!("2024-06-15T08:00:00Z")
        );
        assert_eq!(
            ok(AttributeType::Date, json!("2024-06-15T10:00:00.250Z")),
            json!("2024-06-15T10:00:00.250Z")
        );
        bad(AttributeType::Date, json!("2024-06-15T10:00:00"));
        assert_eq!(
            ok(AttributeType::Date, json!("0001-01-01")),
            json!("0001-01-01")
        );
        ok(AttributeType::Date, json!("9999-12-31T23:59:59.999Z"));
        for (v, says) in [
            ("0000-01-01", "0001 to 9999"),
            ("0000-01-01T00:00:00Z", "0001 to 9999"),
            ("0001-01-01T00:30:00+01:00", "0001 to 9999"),
            ("9999-12-31T23:30:00-01:00", "0001 to 9999"),
            ("2016-12-31T23:59:60Z", "leap second"),
            ("2024-06-15T10:00:60+02:00", "leap second"),
            ("+2024-06-1", "expected a date"),
            ("2024-6-015", "expected a date"),
        ] {
            let e = bad(AttributeType::Date, json!(v));
            assert!(e.contains(says), "{v}: {e}");
        }
        bad(AttributeType::Date, json!("2024-02-30"));
        bad(AttributeType::Date, json!("15/06/2024"));
        bad(AttributeType::Date, json!(20240615));
    }

    #[test]
    fn url() {
        ok(AttributeType::Url, json!("https://example.com/a?b=c"));
        ok(AttributeType::Url, json!("http://localhost:8080"));
        bad(AttributeType::Url, json!("ftp://example.com"));
        bad(AttributeType::Url, json!("/relative/path"));
        bad(AttributeType::Url, json!("example.com"));
        bad(AttributeType::Url, json!(3));
    }

    #[test]
    fn category() {
        ok(AttributeType::Category, json!("red"));
        assert!(bad(AttributeType::Category, json!("Red")).contains("label of option 'red'"));
        bad(AttributeType::Category, json!(["red"]));
        bad(AttributeType::Category, json!("green"));
    }

    #[test]
    fn multiple_category() {
        assert_eq!(
            ok(AttributeType::MultipleCategory, json!(["blue", "red"])),
            json!(["blue", "red"])
        );
        ok(AttributeType::MultipleCategory, json!([]));
        assert!(bad(AttributeType::MultipleCategory, json!(["red", "red"])).contains("twice"));
        bad(AttributeType::MultipleCategory, json!("red"));
        bad(AttributeType::MultipleCategory, json!(["red", 1]));
    }
}
