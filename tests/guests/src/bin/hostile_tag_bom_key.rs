//! Hostile test guest `tag_bom_key` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    // Looks like dagster/retry_number on any screen.
    let mut d = Decision::none("a system tag in disguise");
    d.failed_run_tags = vec![("\u{feff}dagster/retry_number".into(), "0".into())];
    d
}

hostile_policy!(misbehave);

fn main() {}
