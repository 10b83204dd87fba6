//! Hostile test guest `many_events` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let mut d = Decision::none("five million empty events");
    d.events = vec![String::new(); 5_000_000];
    d
}

hostile_policy!(misbehave);

fn main() {}
