//! Hostile test guest `packed_empty_strings`: 100 MB of packed answer, one byte an empty event
//! (decoded whole it peaked at 2.6 GB of host memory).

fn answer() -> Result<Vec<u8>, String> {
    let events: usize = 100_000_000;
    let mut bytes = vec![0x81, 0xa6];
    bytes.extend_from_slice(b"events");
    bytes.push(0xdd);
    bytes.extend_from_slice(&(events as u32).to_be_bytes());
    bytes.resize(bytes.len() + events, 0xa0);
    Ok(bytes)
}

guests::hostile_packed!(answer, answer);

fn main() {}
