//! Hostile test guest `negative_delay` (see host/tests/all/sandbox.rs for what must come of it).

use runretry_kit::{Decision, Run};
use guests::{decision, hostile_policy};

fn misbehave(run: &Run) -> Decision {
    let mut d = decision("wait less than nothing".into());
    d.delay_seconds = -1.0;
    d
}

hostile_policy!(misbehave);

fn main() {}
