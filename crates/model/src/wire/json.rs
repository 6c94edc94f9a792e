//! The two JSON shapes every part of a request is read through: a string
//! borrowed from the body when it holds no escapes, and the entries of an
//! object in order with duplicates kept, so that a repeated key is refused
//! instead of silently overwritten (`serde_json::Value` keeps the last one,
//! a derived struct refuses it: two readers, two verdicts).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON string, borrowed from the input unless it had to be unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

/// The entries of a JSON object, in order, values unread; then the keys
/// that could not be read (a lone surrogate escape such as `"\ud800"`, which
/// no Rust string holds), as sent, their values dropped.
///
/// An unreadable key cannot be one the reader looks for (every name it
/// looks for is plain ASCII), so where unknown keys are ignored
/// (attributes, records, the body) it is ignored too, never read; where
/// unknown keys are refused (identifiers) the caller refuses it.
pub(crate) struct Entries<'a>(
    pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>,
    pub(crate) Vec<&'a RawValue>,
);

impl Entries<'_> {
    /// Every key, read or not.
    pub(crate) fn len(&self) -> usize {
        self.0.len() + self.1.len()
    }
}

/// A key as sent (with its quotes), read: borrowed when it holds no
/// escape, `None` when an escape is not valid Unicode.
pub(crate) fn read_key(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.contains('\\') {
        // A key without escapes is its text between the quotes.
        return text.get(1..text.len() - 1).map(Cow::Borrowed);
    }
    serde_json::from_str::<Text<'_>>(text).ok().map(|Text(t)| t)
}

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
                // serde_json gives no size hint; 16 holds most records'
                // attributes without growing.
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
                let mut unreadable = Vec::new();
                // Keys are taken raw, so that one that is not valid Unicode
                // does not make the whole object unreadable.
                while let Some(key) = map.next_key::<&'de RawValue>()? {
                    let value = map.next_value::<&'de RawValue>()?;
                    match read_key(key) {
                        Some(key) => out.push((key, value)),
                        None => unreadable.push(key),
                    }
                }
                Ok(Entries(out, unreadable))
            }
        }
        d.deserialize_map(EntriesVisitor)
    }
}

/// What went wrong reading a part of the body, without serde_json's
/// position (which counts within the part, not the body, and so misleads).
pub(crate) fn reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// `raw` is JSON `null`.
pub(crate) fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// Reads `raw` as an object, values unread.
pub(crate) fn object(raw: &RawValue) -> Result<Entries<'_>, serde_json::Error> {
    serde_json::from_str(raw.get())
}

/// Reads `raw` as an array of values, unread.
pub(crate) fn array(raw: &RawValue) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::from_str(raw.get())
}

/// The first key that appears twice, if any.
pub(crate) fn duplicate<'e>(entries: &'e Entries<'_>) -> Option<&'e str> {
    let keys = &entries.0;
    // Comparing every pair costs less than hashing for the few keys of a
    // record or its attributes.
    if keys.len() <= 32 {
        for (i, (k, _)) in keys.iter().enumerate() {
            if keys[..i].iter().any(|(other, _)| other == k) {
                return Some(k);
            }
        }
        return None;
    }
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    keys.iter()
        .find(|(k, _)| !seen.insert(k.as_ref()))
        .map(|(k, _)| k.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_order_and_duplicates() {
        let e: Entries<'_> = serde_json::from_str(r#"{"b":1,"a":[2],"b":null}"#).unwrap();
        let keys: Vec<&str> = e.0.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(e.0[1].1.get(), "[2]");
        assert_eq!(duplicate(&e), Some("b"));
    }

    #[test]
    fn entries_refuse_arrays_and_broken_keys() {
        assert!(serde_json::from_str::<Entries<'_>>("[1]").is_err());
        assert!(serde_json::from_str::<Entries<'_>>(r#"{"a\x":1}"#).is_err());
        assert!(serde_json::from_str::<Entries<'_>>("{\"a\u{1}\":1}").is_err());
    }

    #[test]
    fn keys_that_are_not_unicode_are_set_apart() {
        let e: Entries<'_> =
            serde_json::from_str(r#"{"a\ud800":{"deep":1},"b":2,"\u0063":3,"\udc00x":4}"#).unwrap();
        let keys: Vec<&str> = e.0.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "c"]);
        assert!(matches!(e.0[0].0, Cow::Borrowed("b")));
        let unread: Vec<&str> = e.1.iter().map(|k| k.get()).collect();
        assert_eq!(unread, [r#""a\ud800""#, r#""\udc00x""#]);
        assert_eq!(e.len(), 4);
    }

    #[test]
    fn text_borrows_unless_escaped() {
        let t: Text<'_> = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(t.0, Cow::Borrowed("plain")));
        let t: Text<'_> = serde_json::from_str(r#""a\nb""#).unwrap();
        assert_eq!(t.0, "a\nb");
        assert!(serde_json::from_str::<Text<'_>>(r#""a\ud800b""#).is_err());
    }

    #[test]
    fn reasons_drop_the_position() {
        let e = serde_json::from_str::<serde_json::Value>("1e400").unwrap_err();
        assert_eq!(reason(&e), "number out of range");
    }
}
