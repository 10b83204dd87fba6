//! Hostile test guest `panic` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(run: &Run) -> Decision {
    panic!("hostile policy panicked on purpose for run {}", run.run_id);
}

hostile_policy!(misbehave);

fn main() {}
