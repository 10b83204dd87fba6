//! Hostile test guest `tag_empty_key` (see host/tests/all/sandbox.rs for what must come of it).

use runretry_kit::{Decision, Run};
use guests::{decision, hostile_policy};

fn misbehave(run: &Run) -> Decision {
    let mut d = decision("an empty tag key".into());
    d.failed_run_tags = vec![(String::new(), "x".into())];
    d
}

hostile_policy!(misbehave);

fn main() {}
