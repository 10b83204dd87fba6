//! Hostile test guest `long_texts` (see cli/tests/all/sandbox.rs for what must come of it): a
//! reason and an event of 1 MiB each, under the output cap.

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let mut d = Decision::none("r".repeat(1 << 20));
    d.events = vec!["e".repeat(1 << 20), "short".into()];
    d
}

hostile_policy!(misbehave);

fn main() {}
