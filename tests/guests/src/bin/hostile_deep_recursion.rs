//! Hostile test guest `deep_recursion` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};
use std::hint::black_box;

fn misbehave(_run: &Run) -> Decision {
    // Scalars only, so every frame lives on the Wasm stack (not Rust's shadow stack in
    // linear memory) and the recursion ends in a Wasm stack overflow.
    fn dive(depth: u64) -> u64 {
        if black_box(depth) == u64::MAX {
            return 0;
        }
        dive(depth + 1).wrapping_add(black_box(1))
    }
    Decision::none(format!("{}", dive(0)))
}

hostile_policy!(misbehave);

fn main() {}
