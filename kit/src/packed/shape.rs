//! A packed answer's shape, read before it is decoded: the buffer comes from an untrusted guest,
//! and decoding allocates by what the buffer claims (a 5-byte map header can claim 2^32 entries;
//! 100 MB of empty strings decode to 2.6 GB). This walk reads only headers, allocates nothing
//! whatever the buffer holds, and refuses a buffer whose decoded value would cost the host more
//! than a budget, so the decoder that follows is proportional to the bytes that are there.

use rmp::Marker;

/// What the host pays for one decoded value besides its text: a `String` or a `Vec` (24 bytes);
/// a tag, a pair of strings, is two values (48 bytes, the size of `(String, String)`).
pub const VALUE_COST: usize = 24;

/// Deepest nesting an answer may have. The deepest answer is a selection result
/// (`Ok` → selection → key list → key): four levels; the rest is room, not a need.
pub const MAX_DEPTH: usize = 16;

/// Check that `bytes` hold exactly one MessagePack value, of the types the model uses (no
/// extension types), no deeper than [`MAX_DEPTH`], every length within the bytes that follow it,
/// and costing at most `budget` bytes decoded ([`VALUE_COST`] a value plus its text). The error
/// says what is wrong and at which byte.
pub fn check(bytes: &[u8], budget: usize) -> Result<(), String> {
    let mut at = 0usize;
    let mut cost = 0usize;
    // Values still to read at each open level; the buffer is one value.
    let mut open: Vec<usize> = Vec::with_capacity(MAX_DEPTH);
    open.push(1);
    while let Some(left) = open.last_mut() {
        if *left == 0 {
            open.pop();
            continue;
        }
        *left -= 1;
        let start = at;
        let header = header(bytes, &mut at)?;
        let rest = bytes.len() - at;
        if header.payload > rest {
            return Err(format!("byte {start}: a value of {} bytes, but only {rest} follow", header.payload));
        }
        at += header.payload;
        cost = cost.saturating_add(VALUE_COST).saturating_add(header.payload);
        if cost > budget {
            return Err(format!(
                "over the output cap: decoded, the answer would take more than {budget} bytes (its budget)"
            ));
        }
        if header.children > 0 {
            // Every value is at least one byte: a count past the bytes left is a lie.
            if header.children > bytes.len() - at {
                return Err(format!(
                    "byte {start}: a {} of {} entries, but only {} bytes follow",
                    header.what,
                    header.entries,
                    bytes.len() - at
                ));
            }
            if open.len() == MAX_DEPTH {
                return Err(format!("byte {start}: nested deeper than {MAX_DEPTH} levels"));
            }
            open.push(header.children);
        }
    }
    match bytes.len() - at {
        0 => Ok(()),
        extra => Err(format!("{extra} bytes after the answer (one value was expected)")),
    }
}

/// One value's header: how many values it holds and how many bytes of its own follow.
struct Header {
    what: &'static str,
    /// Entries as the header states them (pairs, for a map).
    entries: usize,
    /// Values nested in it (a map's entries count twice: key and value).
    children: usize,
    /// Bytes of its own after the header (a string's text, a number's bytes).
    payload: usize,
}

fn header(bytes: &[u8], at: &mut usize) -> Result<Header, String> {
    let start = *at;
    let marker =
        *bytes.get(start).ok_or_else(|| format!("byte {start}: the buffer ends where a value should start"))?;
    *at += 1;
    // A length of `n` bytes, big-endian, right after the marker.
    let mut length = |n: usize| -> Result<usize, String> {
        let field = bytes.get(*at..*at + n).ok_or_else(|| format!("byte {start}: the buffer ends inside a header"))?;
        *at += n;
        Ok(field.iter().fold(0usize, |total, &b| (total << 8) | usize::from(b)))
    };
    let scalar = |payload| Ok(Header { what: "scalar", entries: 0, children: 0, payload });
    let text = |what, payload| Ok(Header { what, entries: 0, children: 0, payload });
    let array = |entries| Ok(Header { what: "array", entries, children: entries, payload: 0 });
    let map = |entries: usize| Ok(Header { what: "map", entries, children: entries.saturating_mul(2), payload: 0 });
    match Marker::from_u8(marker) {
        Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => scalar(0),
        Marker::U8 | Marker::I8 => scalar(1),
        Marker::U16 | Marker::I16 => scalar(2),
        Marker::U32 | Marker::I32 | Marker::F32 => scalar(4),
        Marker::U64 | Marker::I64 | Marker::F64 => scalar(8),
        Marker::FixStr(n) => text("string", usize::from(n)),
        Marker::Str8 => text("string", length(1)?),
        Marker::Str16 => text("string", length(2)?),
        Marker::Str32 => text("string", length(4)?),
        Marker::Bin8 => text("binary", length(1)?),
        Marker::Bin16 => text("binary", length(2)?),
        Marker::Bin32 => text("binary", length(4)?),
        Marker::FixArray(n) => array(usize::from(n)),
        Marker::Array16 => array(length(2)?),
        Marker::Array32 => array(length(4)?),
        Marker::FixMap(n) => map(usize::from(n)),
        Marker::Map16 => map(length(2)?),
        Marker::Map32 => map(length(4)?),
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => Err(format!("byte {start}: an extension type (0x{marker:02x}), which the model never uses")),
        Marker::Reserved => Err(format!("byte {start}: 0x{marker:02x} is not a MessagePack marker")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_value_within_its_budget_passes() {
        let bytes = rmp_serde::to_vec_named(&(vec!["a", "bc"], 1.5f64, Some(7u32))).unwrap();
        check(&bytes, 1_000).unwrap();
    }

    /// The 5-byte header that aborted the host: a map claiming 2^32-1 entries.
    #[test]
    fn a_header_claiming_more_entries_than_bytes_is_refused() {
        let error = check(&[0xdf, 0xff, 0xff, 0xff, 0xff], usize::MAX).unwrap_err();
        assert!(error.contains("map of 4294967295 entries, but only 0 bytes follow"), "{error}");
        let error = check(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'], usize::MAX).unwrap_err();
        assert!(error.contains("a value of 4294967295 bytes, but only 1 follow"), "{error}");
    }

    /// Many cheap values cost the host far more than their bytes: the budget counts them.
    #[test]
    fn many_empty_strings_exhaust_the_budget_before_decoding() {
        let bytes = rmp_serde::to_vec(&vec![""; 10_000]).unwrap();
        assert!(bytes.len() < 10_010);
        let error = check(&bytes, 100_000).unwrap_err();
        assert!(error.contains("more than 100000 bytes"), "{error}");
        check(&bytes, 10_001 * VALUE_COST).unwrap();
    }

    #[test]
    fn trailing_bytes_depth_and_extensions_are_refused() {
        assert!(check(&[0xc0, 0xc0], 1_000).unwrap_err().contains("1 bytes after the answer"));
        let deep = [vec![0x91; MAX_DEPTH + 1], vec![0xc0]].concat();
        assert!(check(&deep, 10_000).unwrap_err().contains("deeper than"));
        assert!(check(&[0xd4, 0x01, 0x00], 1_000).unwrap_err().contains("extension type"));
        assert!(check(&[0xc1], 1_000).unwrap_err().contains("not a MessagePack marker"));
        assert!(check(&[], 1_000).unwrap_err().contains("ends where a value should start"));
        assert!(check(&[0xda, 0x00], 1_000).unwrap_err().contains("ends inside a header"));
    }
}
