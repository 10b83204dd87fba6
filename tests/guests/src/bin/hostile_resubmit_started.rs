//! Hostile test guest `resubmit_started` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Action, Decision, Run};

fn misbehave(run: &Run) -> Decision {
    // The test's case holds an automatic retry of this run that has already started.
    let child = run.group.iter().find(|m| m.parent_run_id.as_deref() == Some(run.run_id.as_str()));
    let mut d = Decision::none("resubmit a retry that already started");
    d.action = Action::ResubmitExisting;
    d.resubmit_run_id = Some(child.map_or("no child in the case".into(), |m| m.run_id.clone()));
    d
}

hostile_policy!(misbehave);

fn main() {}
