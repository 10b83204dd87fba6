//! Hostile test guest `read_file` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    return Decision::none(match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => format!("LEAKED {} bytes of /etc/passwd", text.len()),
        Err(e) => format!("denied: {e}"),
    });
}

hostile_policy!(misbehave);

fn main() {}
