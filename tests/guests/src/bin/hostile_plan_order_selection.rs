//! Hostile test guest `plan_order_selection` (see host/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Config, Decision, Failure, Run, Strategy};

fn misbehave(run: &Run) -> Decision {
    let config = Config { enabled: true, max_retries: 5, retry_on_asset_or_op_failure: true };
    let mut d = runretry_default_policy::should_retry(run, &Failure::default(), &config);
    if d.strategy == Some(Strategy::FromFailure) && d.steps.is_some() {
        d.steps = Some(listed_order_from_failure(run));
    }
    d
}

hostile_policy!(misbehave, |run: &Run, strategy: Strategy| -> Result<Vec<String>, String> {
    match strategy {
        Strategy::FromFailure => Ok(listed_order_from_failure(run)),
        other => runretry_default_policy::select_steps(run, other),
    }
});

/// FROM_FAILURE with a plausible bug: one pass over the plan in the order it is listed, so a
/// step listed before its upstream misses the downstream closure. Each suite must catch it.
fn listed_order_from_failure(run: &Run) -> Vec<String> {
    use runretry_kit::StepStatus;
    let mut selected: Vec<String> = Vec::new();
    for step in &run.steps {
        let own = matches!(
            step.status,
            StepStatus::Failure | StepStatus::InProgress | StepStatus::NotStarted | StepStatus::ResourceInitFailure
        );
        if step.status != StepStatus::Skipped && (own || step.upstream.iter().any(|u| selected.contains(u))) {
            selected.push(step.key.clone());
        }
    }
    selected.sort();
    selected
}

fn main() {}
