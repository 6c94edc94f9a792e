//! Numbers are returned as they were sent, or refused.
//!
//! A number attribute is written to PostgreSQL as the JSON text the client
//! sent, which `jsonb` keeps exactly (as a `numeric`); reading it back goes
//! through serde_json, which holds an integer of 64 bits exactly and
//! anything else as the nearest IEEE double, printed in its shortest form.
//! So `1e-400` would come back `0.0`, a 30-digit integer
//! `1.2345678901234568e+29`, `-9223372036854775809`
//! `-9.223372036854776e+18`.
//! Rather than return another value than the one stored, such a literal
//! rejects its record: [`check_exact`] accepts a literal only when what
//! would be read back has the same decimal value (`0.1`, `1.5`, `1e20` and
//! every integer from −2⁶³ to 2⁶⁴−1 do).
//!
//! The check follows the real path, not an approximation of it: it writes
//! the stored value the way PostgreSQL prints it (plain digits, as many
//! decimals as the literal's scale) and reads that with serde_json.

use std::cmp::max;

use crate::value::ValueError;

/// Digits a value may keep after the decimal point: PostgreSQL refuses a
/// `numeric` of more than 16,383 (the insert of a whole batch would fail),
/// and no double needs more than 1,075 to be written out in full.
pub const MAX_SCALE: i64 = 1_000;

/// A number literal's exact value: `digits × 10^exponent`, `digits` with
/// no leading or trailing zero (empty for zero, which is never negative).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

/// A JSON number literal, read exactly: its value and its scale (the
/// decimals PostgreSQL keeps: the literal's own, less its exponent).
fn parse(literal: &str) -> Option<(Decimal, i64)> {
    let (negative, rest) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], exponent(&rest[i + 1..])?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_len = i64::try_from(frac.len()).ok()?;
    let scale = max(0, frac_len.saturating_sub(exp));
    let all = format!("{int}{frac}");
    let significant = all.trim_start_matches('0');
    let digits = significant.trim_end_matches('0');
    let trailing = i64::try_from(significant.len() - digits.len()).ok()?;
    let value = if digits.is_empty() {
        Decimal {
            negative: false,
            digits: String::new(),
            exponent: 0,
        }
    } else {
        Decimal {
            negative,
            digits: digits.to_owned(),
            exponent: exp.saturating_sub(frac_len).saturating_add(trailing),
        }
    };
    Some((value, scale))
}

/// An exponent's digits with their sign, saturating far beyond any double.
fn exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .trim_start_matches('0')
        .bytes()
        .try_fold(0i64, |n, b| {
            n.checked_mul(10)?.checked_add(i64::from(b - b'0'))
        })
        .unwrap_or(i64::MAX / 4);
    Some(if negative { -magnitude } else { magnitude })
}

/// The value as PostgreSQL prints a `numeric` of this scale: plain digits,
/// exactly `scale` of them after the point, no exponent.
fn printed(value: &Decimal, scale: i64) -> String {
    // value × 10^scale is an integer: the literal's scale covers its digits.
    let shift = usize::try_from(value.exponent + scale).unwrap_or(0);
    let mut whole = format!("{}{}", value.digits, "0".repeat(shift));
    let scale = usize::try_from(scale).unwrap_or(0);
    if whole.len() <= scale {
        whole = format!("{}{whole}", "0".repeat(scale + 1 - whole.len()));
    }
    let sign = if value.negative { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{whole}")
    } else {
        let (int, frac) = whole.split_at(whole.len() - scale);
        format!("{sign}{int}.{frac}")
    }
}

/// What a reader gets back for a stored `literal`, printed as the API
/// prints it: `None` when it cannot be stored at all.
pub fn read_back(literal: &str) -> Option<String> {
    let (value, scale) = parse(literal.trim())?;
    if scale > MAX_SCALE {
        return None;
    }
    // Beyond the doubles' range the answer is known without printing a
    // long text: past 1.8e308 serde_json refuses, below 5e-324 it reads 0.
    let magnitude = value.exponent.saturating_add(value.digits.len() as i64);
    if magnitude > 400 {
        return None;
    }
    if magnitude < -400 {
        return Some(if scale == 0 { "0" } else { "0.0" }.to_owned());
    }
    let stored = printed(&value, scale);
    let number: serde_json::Number = serde_json::from_str(&stored).ok()?;
    Some(number.to_string())
}

/// The common decimal, decided without writing anything out: a literal of
/// at most 15 significant digits (a double holds any such decimal, and its
/// shortest form is that decimal again), well within the doubles' normal
/// range, and of a scale PostgreSQL keeps. `false` means "look closer", not
/// "inexact".
fn plainly_exact(literal: &str) -> bool {
    let b = literal.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_end = i;
    let (mut frac_start, mut frac_end) = (i, i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_end = i;
    }
    let mut exp: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        // Exponents are left to the careful path, but for a short one.
        match exponent(&literal[i + 1..]) {
            Some(e) if e.abs() <= 100 => exp = e,
            _ => return false,
        }
        i = b.len();
    }
    if i != b.len() || int_end == int_start {
        return false;
    }
    // The digits without the point, their significant part.
    let all = b[int_start..int_end].iter().chain(&b[frac_start..frac_end]);
    let lead = all.clone().take_while(|&&d| d == b'0').count();
    let total = (int_end - int_start) + (frac_end - frac_start);
    if lead == total {
        // Zero, at any scale PostgreSQL keeps.
        return (frac_end - frac_start) as i64 - exp <= MAX_SCALE;
    }
    let trail = all.rev().take_while(|&&d| d == b'0').count();
    let significant = total - lead - trail;
    let scale = max(0, (frac_end - frac_start) as i64 - exp);
    significant <= 15 && scale <= MAX_SCALE && total <= 200
}

/// Whether `literal` (a JSON number as sent) is read back with the same
/// value; the message says what it would have become.
pub fn check_exact(literal: &str) -> Result<(), ValueError> {
    let literal = literal.trim();
    // The common case, decided without a round trip: an integer of at most
    // 18 digits is read back as the same 64-bit integer.
    let digits = literal.strip_prefix('-').unwrap_or(literal);
    if !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    if plainly_exact(literal) {
        return Ok(());
    }
    check_closely(literal)
}

/// [`check_exact`] the long way: the literal written out as stored and
/// read back.
fn check_closely(literal: &str) -> Result<(), ValueError> {
    let shown = || match literal.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &literal[..i]),
        None => literal.to_owned(),
    };
    let Some((sent, scale)) = parse(literal) else {
        return Err(ValueError(format!("{} is not a JSON number", shown())));
    };
    if scale > MAX_SCALE {
        return Err(ValueError(format!(
            "the number {} has more than {MAX_SCALE} digits after the decimal point",
            shown()
        )));
    }
    match read_back(literal) {
        Some(back) if parse(&back).is_some_and(|(v, _)| v == sent) => Ok(()),
        Some(back) => Err(ValueError(format!(
            "the number {} would be returned as {back}: numbers are kept as 64-bit \
             integers or as doubles, which hold 15 significant digits",
            shown()
        ))),
        None => Err(ValueError(format!(
            "the number {} is too large to store",
            shown()
        ))),
    }
}

/// The integer a JSON number literal is equal to, written any way JSON
/// allows (`392190`, `392190.0`, `3.9219e5`), exactly; `None` when it has a
/// fractional part or does not fit 64 bits. JSON Schema's `integer` is a
/// value, not a spelling, so where the API documents an integer it accepts
/// every spelling of one, read from the literal rather than through a
/// double (which would round past 2^53).
pub fn integer(literal: &str) -> Option<i64> {
    let (value, _) = parse(literal.trim())?;
    if value.digits.is_empty() {
        return Some(0);
    }
    let zeros = usize::try_from(value.exponent).ok()?;
    if value.digits.len() + zeros > 19 {
        return None;
    }
    let sign = if value.negative { "-" } else { "" };
    format!("{sign}{}{}", value.digits, "0".repeat(zeros))
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refused(literal: &str) -> String {
        check_exact(literal)
            .map(|()| panic!("{literal} accepted"))
            .unwrap_err()
            .0
    }

    #[test]
    fn integers_in_every_spelling() {
        for (literal, want) in [
            ("392190", Some(392_190)),
            ("392190.0", Some(392_190)),
            ("3.9219e5", Some(392_190)),
            ("-0.0", Some(0)),
            ("9223372036854775807", Some(i64::MAX)),
            ("9223372036854775807.000", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("1.5", None),
            ("1e-1", None),
            ("1e400", None),
            ("\"1\"", None),
        ] {
            assert_eq!(integer(literal), want, "{literal}");
        }
    }

    #[test]
    fn what_the_issue_found_is_refused_naming_what_it_would_become() {
        assert!(refused("1e-400").contains("returned as 0.0"));
        let e = refused("123456789012345678901234567890");
        assert!(e.contains("returned as 1.2345678901234568e+29"), "{e}");
        assert!(refused("-9223372036854775809").contains("returned as -9.223372036854776e+18"));
        let e = refused("12345678901234567.0");
        assert!(e.contains("returned as 1.2345678901234568e+16"), "{e}");
        assert!(refused("0.10000000000000001").contains("returned as 0.1"));
    }

    #[test]
    fn what_comes_back_as_sent_is_accepted() {
        for ok in [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "0e5",
            "1",
            "-1",
            "0.1",
            "1.5",
            "1.50",
            "1e20",
            "1E+20",
            "-2.5e-3",
            "100e-2",
            "1e308",
            "5e-324",
            "1.7976931348623157e308",
            "9007199254740993",
            "-9223372036854775808",
            "18446744073709551615",
            "12345678901234567e0",
            "123.456",
            " 42 ",
        ] {
            check_exact(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn what_cannot_be_stored_is_refused() {
        assert!(refused(&format!("1.{}", "0".repeat(1001))).contains("1000 digits"));
        assert!(refused("1e400").contains("too large"));
        assert!(refused("18446744073709551616").contains("returned as"));
        assert!(refused("2e-324").contains("returned as 0.0"));
        assert!(refused("1e-99999999999999999999999").contains("1000 digits"));
        assert!(refused("nope").contains("not a JSON number"));
    }

    #[test]
    fn postgres_prints_the_literals_scale() {
        for (literal, stored) in [
            ("1.50e1", "15.0"),
            ("1.5e1", "15"),
            ("100e-2", "1.00"),
            ("-0.0", "0.0"),
            ("-0", "0"),
            ("1e20", "100000000000000000000"),
            ("0.0000000000000000000001e3", "0.0000000000000000001"),
            ("-12.5e-1", "-1.25"),
        ] {
            let (value, scale) = parse(literal).unwrap();
            assert_eq!(printed(&value, scale), stored, "{literal}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn every_double_as_printed_is_accepted(bits in any::<u64>()) {
            let d = f64::from_bits(bits);
            prop_assume!(d.is_finite());
            let text = serde_json::to_string(&d).unwrap();
            prop_assert!(check_exact(&text).is_ok(), "{}", text);
        }

        #[test]
        fn every_64_bit_integer_is_accepted(i in any::<i64>(), u in any::<u64>()) {
            prop_assert!(check_exact(&i.to_string()).is_ok());
            prop_assert!(check_exact(&u.to_string()).is_ok());
        }

        #[test]
        fn accepted_literals_are_64_bit_integers_or_doubles_as_printed(
            int in "-?(0|[1-9][0-9]{0,20})",
            frac in proptest::option::of("[0-9]{1,18}"),
            exp in proptest::option::of(-340i32..340),
        ) {
            let mut literal = int;
            if let Some(f) = frac { literal = format!("{literal}.{f}"); }
            if let Some(e) = exp { literal = format!("{literal}e{e}"); }
            let sent = parse(&literal).unwrap().0;
            let magnitude = sent.exponent + sent.digits.len() as i64;
            if check_exact(&literal).is_err() {
                // 15 significant digits always fit a double in its normal range.
                let fits = sent.digits.len() <= 15 && (-300..300).contains(&magnitude);
                prop_assert!(!fits, "{} refused", literal);
                return Ok(());
            }
            // An oracle that shares nothing with the check: the standard
            // library's correctly rounded parse, printed shortest.
            let integer = sent.exponent >= 0
                && format!("{}{}", sent.digits, "0".repeat(sent.exponent as usize))
                    .parse::<i128>()
                    .is_ok_and(|n| (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&n));
            let double = literal.parse::<f64>().unwrap();
            let shortest = parse(&format!("{double:e}")).unwrap().0;
            // Two literals of the shortest length may read as the same double
            // (1000000000000000.2 and .3 both read as …000.25); shortest
            // printers break that tie differently, and either is the value.
            let also_shortest = sent.digits.len() <= shortest.digits.len()
                && sent.negative == shortest.negative;
            prop_assert!(integer || shortest == sent || also_shortest, "{} accepted", literal);
        }

        #[test]
        fn the_short_path_accepts_only_what_the_long_one_does(
            int in "-?(0|[1-9][0-9]{0,20})",
            frac in proptest::option::of("[0-9]{1,25}"),
            exp in proptest::option::of(-400i32..400),
            big_e in any::<bool>(),
        ) {
            let mut literal = int;
            if let Some(f) = frac { literal = format!("{literal}.{f}"); }
            if let Some(e) = exp { literal = format!("{literal}{}{e}", if big_e { "E" } else { "e" }); }
            if plainly_exact(&literal) {
                prop_assert!(check_closely(&literal).is_ok(), "{} taken as exact", literal);
            }
        }

        #[test]
        fn a_digit_past_what_a_double_holds_is_refused(bits in any::<u64>(), tail in 1u8..10) {
            let d = f64::from_bits(bits);
            prop_assume!(d.is_finite() && d != 0.0);
            let text = serde_json::to_string(&d).unwrap();
            let (mantissa, exp) = text
                .split_once('e')
                .map_or((text.as_str(), String::new()), |(m, e)| (m, format!("e{e}")));
            let point = if mantissa.contains('.') { "" } else { "." };
            let longer = format!("{mantissa}{point}0000000000000000000{tail}{exp}");
            prop_assert!(check_exact(&longer).is_err(), "{}", longer);
        }
    }
}
