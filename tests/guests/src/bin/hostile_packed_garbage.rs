//! Hostile test guest `packed_garbage`: an answer that is not MessagePack at all.

fn answer() -> Result<Vec<u8>, String> {
    Ok(vec![0xc1, 0x00, 0x01])
}

guests::hostile_packed!(answer, answer);

fn main() {}
