//! Hostile test guest `huge_refusal`: refuses every selection with 10 MiB of text, through both
//! interfaces (a 20 MB typed refusal was printed whole).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    Decision::none("decides soundly; refuses selections at length")
}

hostile_policy!(misbehave, |_run: &Run, _strategy| Err(format!("refused: {}", "z".repeat(10 << 20))));

fn main() {}
