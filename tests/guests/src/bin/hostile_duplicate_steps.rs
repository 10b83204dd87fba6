//! Hostile test guest `duplicate_steps` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Failure, Run, RunRetries, Selection, Strategy};

fn misbehave(run: &Run) -> Decision {
    let mut d = runretry_default_policy::should_retry(
        run,
        &Failure::default(),
        &RunRetries { enabled: true, max_retries: 5, retry_on_asset_or_op_failure: true, ..RunRetries::default() },
    );
    if let Some(steps) = d.steps.as_mut() {
        let first = steps[0].clone();
        steps.push(first);
    }
    d
}

hostile_policy!(misbehave, |run: &Run, _strategy: Strategy| -> Result<Selection, String> {
    Ok(Selection {
        steps: run.steps.iter().chain(run.steps.iter()).map(|s| s.key.clone()).collect(),
        ..Selection::default()
    })
});

fn main() {}
