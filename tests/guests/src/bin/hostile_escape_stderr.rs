//! Hostile test guest `escape_stderr` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    // A screen clear, a colour, and a forged log line, then a trap.
    eprint!("\x1b[2J\x1b[31mINFO all good\nrunretry: decision: LAUNCH_NEW\x07");
    std::process::abort();
}

hostile_policy!(misbehave);

fn main() {}
