//! Tag parsing exactly as Dagster (Python) does it (docs/dagster-semantics.md §4).

/// First code point of every run of ten Unicode decimal digits (category Nd, Unicode 14, as in
/// CPython 3.11), which Python's `int()` accepts as digits: `"٣"` is 3, full-width `"１"` is 1.
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0,
    0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620,
    0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0,
    0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60,
    0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a Unicode decimal digit, as Python's `unicodedata.decimal`.
fn decimal_value(c: char) -> Option<u32> {
    let cp = c as u32;
    DECIMAL_ZEROS.iter().find(|&&zero| (zero..zero + 10).contains(&cp)).map(|zero| cp - zero)
}

/// Python's `str.isspace`: Unicode White_Space plus the ASCII separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `int(value)` for a base-10 string: surrounding whitespace, a sign, leading zeros,
/// single underscores between digits and any Unicode decimal digits are accepted; anything
/// else (`""`, `"2.0"`, `"1e3"`, `"0x10"`) is `None`. Values beyond `i64` saturate: a budget
/// that large is unlimited in practice.
pub fn python_int(value: &str) -> Option<i64> {
    let trimmed = value.trim_matches(is_python_space);
    let (negative, digits) = match trimmed.chars().next()? {
        '-' => (true, &trimmed[1..]),
        '+' => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let mut magnitude: i128 = 0;
    let mut seen_digit = false;
    let mut after_underscore = false;
    for c in digits.chars() {
        if c == '_' {
            // Underscores only between digits, never doubled.
            if !seen_digit || after_underscore {
                return None;
            }
            after_underscore = true;
            continue;
        }
        let d = decimal_value(c)?;
        magnitude = (magnitude * 10 + i128::from(d)).min(i128::from(u64::MAX));
        seen_digit = true;
        after_underscore = false;
    }
    if !seen_digit || after_underscore {
        return None;
    }
    let signed = if negative { -magnitude } else { magnitude };
    Some(signed.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// Dagster's `get_boolean_tag_value`: absent gives `default`; otherwise false iff the lower-cased
/// value is `"false"`, `"none"`, `"0"` or `""`. No trimming, so `"no"` and `" false"` are true.
pub fn boolean_tag(value: Option<&str>, default: bool) -> bool {
    match value {
        None => default,
        Some(v) => !matches!(v.to_lowercase().as_str(), "false" | "none" | "0" | ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_int_accepts_what_python_accepts() {
        for (input, want) in [
            ("3", 3),
            (" 3 ", 3),
            ("\t3\n", 3),
            ("+2", 2),
            ("-1", -1),
            ("00", 0),
            ("1_0", 10),
            ("1_000_000", 1_000_000),
            ("٣", 3),
            ("１", 1),
            ("\u{1d7d9}", 1),
            ("99999999999999999999999", i64::MAX),
            ("-99999999999999999999999", i64::MIN),
        ] {
            assert_eq!(python_int(input), Some(want), "int({input:?})");
        }
    }

    #[test]
    fn python_int_rejects_what_python_rejects() {
        for input in ["", " ", "2.0", "1e3", "0x10", "not-an-int", "_1", "1_", "1__0", "+", "- 1", "++1", "²"] {
            assert_eq!(python_int(input), None, "int({input:?}) must fail");
        }
    }

    #[test]
    fn boolean_tag_follows_get_boolean_string_value() {
        for v in ["false", "False", "FALSE", "None", "none", "0", ""] {
            assert!(!boolean_tag(Some(v), true), "{v:?} is false");
        }
        for v in ["true", "no", "off", "n", " false", "false ", "yes", "1"] {
            assert!(boolean_tag(Some(v), false), "{v:?} is true");
        }
        assert!(boolean_tag(None, true));
        assert!(!boolean_tag(None, false));
    }
}
