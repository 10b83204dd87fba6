//! Hostile test guest `many_tags` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let mut d = Decision::none("a million tags");
    d.failed_run_tags = (0..1_000_000).map(|i| (format!("t{i}"), String::new())).collect();
    d
}

hostile_policy!(misbehave);

fn main() {}
