//! Hostile test guest `read_clocks` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};
use std::hint::black_box;

fn misbehave(_run: &Run) -> Decision {
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let start = std::time::Instant::now();
    let mut spin = 0u64;
    for i in 0..100_000u64 {
        spin = black_box(spin.wrapping_add(i));
    }
    let elapsed = start.elapsed();
    std::thread::sleep(std::time::Duration::from_millis(250));
    let slept = start.elapsed() - elapsed;
    Decision::none(format!(
        "wall {}.{:09} elapsed {} slept {} ({spin})",
        wall.as_secs(),
        wall.subsec_nanos(),
        elapsed.as_nanos(),
        slept.as_nanos()
    ))
}

hostile_policy!(misbehave);

fn main() {}
