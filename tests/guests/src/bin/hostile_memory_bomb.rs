//! Hostile test guest `memory_bomb` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};
use std::hint::black_box;

fn misbehave(_run: &Run) -> Decision {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(black_box(vec![1u8; 16 << 20]));
    }
}

hostile_policy!(misbehave);

fn main() {}
