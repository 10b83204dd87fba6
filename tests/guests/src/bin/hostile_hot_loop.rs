//! Hostile test guest `hot_loop` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};
use std::hint::black_box;

fn misbehave(_run: &Run) -> Decision {
    // Finite, but ~10^12 iterations: only a fuel budget stops it in time.
    let mut acc = 0u64;
    for i in 0..1_000_000_000_000u64 {
        acc = black_box(acc.wrapping_mul(31).wrapping_add(i));
    }
    Decision::none(format!("{acc}"))
}

hostile_policy!(misbehave);

fn main() {}
