//! Hostile test guest `unknown_assets` (see cli/tests/all/sandbox.rs for what must come of it):
//! an asset retry of an asset the plan does not have.

use guests::hostile_policy;
use runretry_kit::{Decision, Failure, Run, RunRetries, Selection, Strategy};

fn misbehave(run: &Run) -> Decision {
    let mut d = runretry_default_policy::should_retry(
        run,
        &Failure::default(),
        &RunRetries { enabled: true, max_retries: 5, retry_on_asset_or_op_failure: true, ..RunRetries::default() },
    );
    d.strategy = Some(Strategy::FromAssetFailure);
    d.asset_selection = Some(vec!["no_such_asset".to_string()]);
    d.asset_check_selection = Some(Vec::new());
    d
}

hostile_policy!(misbehave, |run: &Run, _strategy: Strategy| -> Result<Selection, String> {
    Ok(Selection {
        steps: run.steps.iter().map(|s| s.key.clone()).collect(),
        asset_selection: Some(vec!["no_such_asset".to_string()]),
        asset_check_selection: Some(Vec::new()),
    })
});

fn main() {}
