//! Hostile test guest `read_env` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let seen = std::env::vars().count() + std::env::args().count();
    return Decision::none(match std::env::var("HOME") {
        Ok(home) => format!("LEAKED HOME={home}"),
        Err(e) => format!("denied: {e}; {seen} variables or arguments visible"),
    });
}

hostile_policy!(misbehave);

fn main() {}
