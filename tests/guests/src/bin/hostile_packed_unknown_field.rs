//! Hostile test guest `packed_unknown_field`: a sound decision with one more field, a megabyte
//! of bulk (it was accepted as a normal answer).

fn answer() -> Result<Vec<u8>, String> {
    let mut decision = guests::decision_object();
    decision.insert("bulk".into(), "x".repeat(1 << 20).into());
    runretry_kit::packed::pack(&decision)
}

guests::hostile_packed!(answer, answer);

fn main() {}
