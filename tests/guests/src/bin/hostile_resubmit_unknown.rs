//! Hostile test guest `resubmit_unknown` (see host/tests/all/sandbox.rs for what must come of it).

use guests::{decision, hostile_policy};
use runretry_kit::{Action, Decision, Run};

fn misbehave(run: &Run) -> Decision {
    let mut d = decision("resubmit a run that does not exist".into());
    d.action = Action::ResubmitExisting;
    d.resubmit_run_id = Some("no-such-run".into());
    d
}

hostile_policy!(misbehave);

fn main() {}
