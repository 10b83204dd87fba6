//! Hostile test guest `many_events` (see host/tests/all/sandbox.rs for what must come of it).

use runretry_kit::{Decision, Run};
use guests::{decision, hostile_policy};

fn misbehave(run: &Run) -> Decision {
    let mut d = decision("five million empty events".into());
    d.events = vec![String::new(); 5_000_000];
    d
}

hostile_policy!(misbehave);

fn main() {}
