//! Hostile test guest `resubmit_unknown` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Action, Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let mut d = Decision::none("resubmit a run that does not exist");
    d.action = Action::ResubmitExisting;
    d.resubmit_run_id = Some("no-such-run".into());
    d
}

hostile_policy!(misbehave);

fn main() {}
