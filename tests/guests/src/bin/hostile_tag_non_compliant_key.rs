//! Hostile test guest `tag_non_compliant_key` (see host/tests/all/sandbox.rs for what must come of it).

use runretry_kit::{Decision, Run};
use guests::{decision, hostile_policy};

fn misbehave(run: &Run) -> Decision {
    let mut d = decision("a key Dagster warns about".into());
    d.failed_run_tags = vec![("my tag&".into(), "x".into()), ("team/owner".into(), "data-eng".into())];
    d
}

hostile_policy!(misbehave);

fn main() {}
