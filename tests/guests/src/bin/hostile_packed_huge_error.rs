//! Hostile test guest `packed_huge_error`: `packed` fails with a 10 MiB message, and refuses a
//! selection with one (each was printed whole).

fn answer() -> Result<Vec<u8>, String> {
    Err(format!("cannot read the case: {}", "x".repeat(10 << 20)))
}

fn refuse() -> Result<Vec<u8>, String> {
    let refusal: runretry_kit::packed::SelectionResult = Err(format!("no: {}", "y".repeat(10 << 20)));
    runretry_kit::packed::pack(&refusal)
}

guests::hostile_packed!(answer, refuse);

fn main() {}
