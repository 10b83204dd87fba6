//! Hostile test guest `unknown_steps` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Failure, Run, RunRetries, Selection, Strategy};

fn misbehave(run: &Run) -> Decision {
    let mut d = runretry_default_policy::should_retry(
        run,
        &Failure::default(),
        &RunRetries { enabled: true, max_retries: 5, retry_on_asset_or_op_failure: true, ..RunRetries::default() },
    );
    d.steps = Some(vec!["no_such_step".to_string()]);
    d
}

hostile_policy!(misbehave, |_run: &Run, _strategy: Strategy| -> Result<Selection, String> {
    Ok(Selection { steps: vec!["no_such_step".to_string()], ..Selection::default() })
});

fn main() {}
