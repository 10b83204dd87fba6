//! Hostile test guest `tag_huge_key` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let mut d = Decision::none("a 1 MiB tag key");
    d.failed_run_tags = vec![("k".repeat(1 << 20), "x".into())];
    d
}

hostile_policy!(misbehave);

fn main() {}
