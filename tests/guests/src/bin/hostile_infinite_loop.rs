//! Hostile test guest `infinite_loop` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};
use std::hint::black_box;

fn misbehave(_run: &Run) -> Decision {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

hostile_policy!(misbehave);

fn main() {}
