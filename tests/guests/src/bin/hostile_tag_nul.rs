//! Hostile test guest `tag_nul` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let mut d = Decision::none("a NUL in a tag value");
    d.failed_run_tags = vec![("team/owner".into(), "data\0eng".into())];
    d
}

hostile_policy!(misbehave);

fn main() {}
