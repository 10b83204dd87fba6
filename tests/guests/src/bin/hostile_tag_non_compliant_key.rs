//! Hostile test guest `tag_non_compliant_key` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let mut d = Decision::none("a key Dagster warns about");
    d.failed_run_tags = vec![("my tag&".into(), "x".into()), ("team/owner".into(), "data-eng".into())];
    d
}

hostile_policy!(misbehave);

fn main() {}
