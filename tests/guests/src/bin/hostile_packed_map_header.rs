//! Hostile test guest `packed_map_header`: a packed answer whose `new_run_tags` map header
//! claims 2^32-1 entries in five bytes (it aborted the host, allocating 206 GB for them).

fn answer() -> Result<Vec<u8>, String> {
    let mut bytes = vec![0x81, 0xac];
    bytes.extend_from_slice(b"new_run_tags");
    bytes.extend_from_slice(&[0xdf, 0xff, 0xff, 0xff, 0xff]);
    Ok(bytes)
}

guests::hostile_packed!(answer, answer);

fn main() {}
