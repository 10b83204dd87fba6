//! Hostile test guest `packed_trailing_bytes`: a sound decision, then a byte more.

fn answer() -> Result<Vec<u8>, String> {
    let mut bytes = runretry_kit::packed::pack(&guests::decision_object())?;
    bytes.push(0xc0);
    Ok(bytes)
}

guests::hostile_packed!(answer, answer);

fn main() {}
