//! Hostile test guest `oversized_output` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let mut d = Decision::none("huge");
    d.events = vec!["x".repeat(1 << 20); 32];
    d
}

hostile_policy!(misbehave);

fn main() {}
