//! Wrong, not hostile: Dagster's semantics, except that the plan is walked in the order it is
//! listed instead of in dependency order, so a step listed before its upstream misses the
//! downstream closure. It answers exactly like the default policy on every plan listed in
//! dependency order, which is how it passed the whole default suite before plans were also
//! listed in reverse; both suites must catch it (cli/tests/all/conformance_kit.rs).

use std::collections::HashSet;

use runretry_kit::{export_policy, Decision, Failure, Policy, Run, RunRetries, Selection, Strategy};

/// The plan as a walk in listed order sees it: an upstream listed after its step has not been
/// visited yet, so it can never pull that step into the selection.
fn as_walked_in_listed_order(run: &Run) -> Run {
    let mut run = run.clone();
    let mut visited = HashSet::new();
    for step in &mut run.steps {
        step.upstream.retain(|upstream| visited.contains(upstream));
        visited.insert(step.key.clone());
    }
    run
}

struct ListedOrder;

impl Policy for ListedOrder {
    fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision {
        runretry_default_policy::should_retry(&as_walked_in_listed_order(run), failure, config)
    }

    fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String> {
        runretry_default_policy::select_steps(&as_walked_in_listed_order(run), strategy)
    }
}

export_policy!(ListedOrder);

fn main() {}
