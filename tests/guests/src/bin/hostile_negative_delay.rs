//! Hostile test guest `negative_delay` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let mut d = Decision::none("wait less than nothing");
    d.delay_seconds = -1.0;
    d
}

hostile_policy!(misbehave);

fn main() {}
