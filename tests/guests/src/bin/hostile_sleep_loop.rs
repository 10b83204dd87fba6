//! Hostile test guest `sleep_loop` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    // Many short sleeps, each well inside the deadline: together they are not.
    loop {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

hostile_policy!(misbehave);

fn main() {}
