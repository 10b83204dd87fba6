//! Hostile test guest `packed_duplicate_field`: a decision that says its reason twice.

fn answer() -> Result<Vec<u8>, String> {
    let decision = guests::decision_object();
    let mut bytes = runretry_kit::packed::pack(&decision)?;
    // A map of fewer than 16 entries is one byte, 0x80 + its length: one entry more.
    assert!(decision.len() < 15 && bytes[0] == 0x80 + decision.len() as u8);
    bytes[0] += 1;
    bytes.extend_from_slice(&[0xa6]);
    bytes.extend_from_slice(b"reason");
    bytes.extend_from_slice(&[0xa5]);
    bytes.extend_from_slice(b"again");
    Ok(bytes)
}

guests::hostile_packed!(answer, answer);

fn main() {}
