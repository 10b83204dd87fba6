//! Hostile test guest `exit_zero` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    std::process::exit(0);
}

hostile_policy!(misbehave);

fn main() {}
