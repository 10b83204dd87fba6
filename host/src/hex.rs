//! Lowercase hex, as digests, cache entries and signatures are written.

/// `bytes` as lowercase hexadecimal, two digits a byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
