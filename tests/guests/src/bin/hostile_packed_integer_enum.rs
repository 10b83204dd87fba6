//! Hostile test guest `packed_integer_enum`: a decision whose action is a number (serde would
//! read it as the variant of that index).

fn answer() -> Result<Vec<u8>, String> {
    let mut decision = guests::decision_object();
    decision.insert("action".into(), 2.into());
    runretry_kit::packed::pack(&decision)
}

guests::hostile_packed!(answer, answer);

fn main() {}
