//! The records list's `cursor`: an extension of Brevo's API that reads a
//! type page after page at the cost of the first page, however deep.
//!
//! A cursor names the last record of the page before it and the order of
//! the walk; the next page starts at the key after it. It is opaque to
//! clients (base64url of the order and the id), who only ever send back
//! one this API gave them: in `next_cursor`, or in the `Link` header of
//! any full page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use objectsync_model::RecordId;
use objectsync_store::processes::Order;

use crate::error::ApiError;

/// Where a cursor starts a page: after `after` (from the first record when
/// `None`), walking in `order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) order: Order,
    pub(crate) after: Option<RecordId>,
}

impl Cursor {
    /// The cursor of the page after the one that ended with record `last`.
    pub(crate) fn after(order: Order, last: RecordId) -> Self {
        Self {
            order,
            after: Some(last),
        }
    }

    /// Its text, as given to clients.
    pub(crate) fn encode(self) -> String {
        let order = match self.order {
            Order::Asc => 'a',
            Order::Desc => 'd',
        };
        let id = self.after.map_or(String::new(), |id| id.0.to_string());
        URL_SAFE_NO_PAD.encode(format!("{order}{id}"))
    }

    /// Reads `cursor=text`: empty is the first page in `sort` (the order the
    /// request asks for, if it does); otherwise a cursor this API gave,
    /// whose order a `sort` sent beside it must not contradict.
    pub(crate) fn decode(text: &str, sort: Option<Order>) -> Result<Self, ApiError> {
        if text.is_empty() {
            return Ok(Self {
                order: sort.unwrap_or(Order::Desc),
                after: None,
            });
        }
        let refused = || {
            ApiError::invalid(
                "'cursor' is not a cursor this API gave: send the next_cursor of a page \
                 (or an empty cursor for the first page)",
            )
        };
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| refused())?;
        let raw = std::str::from_utf8(&raw).map_err(|_| refused())?;
        let (order, id) = match raw.split_at_checked(1) {
            Some(("a", id)) => (Order::Asc, id),
            Some(("d", id)) => (Order::Desc, id),
            _ => return Err(refused()),
        };
        let after = match id {
            "" => None,
            id => Some(RecordId(id.parse().map_err(|_| refused())?)),
        };
        if sort.is_some_and(|s| s != order) {
            return Err(ApiError::invalid(
                "'sort' contradicts the cursor's order: leave 'sort' out, or send it as it was",
            ));
        }
        Ok(Self { order, after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_given() {
        for c in [
            Cursor::after(Order::Asc, RecordId(1)),
            Cursor::after(Order::Desc, RecordId(9_007_199_254_740_993)),
            Cursor {
                order: Order::Asc,
                after: None,
            },
        ] {
            let text = c.encode();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            );
            assert_eq!(Cursor::decode(&text, None).unwrap(), c);
            assert_eq!(Cursor::decode(&text, Some(c.order)).unwrap(), c);
        }
    }

    #[test]
    fn an_empty_cursor_is_the_first_page_in_the_order_asked() {
        let first = Cursor::decode("", None).unwrap();
        assert_eq!((first.order, first.after), (Order::Desc, None));
        let asc = Cursor::decode("", Some(Order::Asc)).unwrap();
        assert_eq!((asc.order, asc.after), (Order::Asc, None));
    }

    #[test]
    fn other_text_and_a_contradicting_sort_are_refused() {
        let desc = Cursor::after(Order::Desc, RecordId(5)).encode();
        assert!(Cursor::decode(&desc, Some(Order::Asc)).is_err());
        for text in [
            "x",
            "!!",
            &URL_SAFE_NO_PAD.encode("z5"),
            &URL_SAFE_NO_PAD.encode("a5x"),
        ] {
            assert!(Cursor::decode(text, None).is_err(), "{text}");
        }
    }
}
