//! Deliberately wrong: drops the `dagster/max_retries` tag before deciding, so the deployment's
//! config always wins. The conformance kit must catch it (cli/tests/all/conformance_kit.rs).

use runretry_kit::{export_policy, Decision, Failure, Policy, Run, RunRetries, Selection, Strategy};

struct IgnoresMaxRetriesTag;

impl Policy for IgnoresMaxRetriesTag {
    fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision {
        let mut run = run.clone();
        run.tags.retain(|(key, _)| key != "dagster/max_retries");
        runretry_default_policy::should_retry(&run, failure, config)
    }

    fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String> {
        runretry_default_policy::select_steps(run, strategy)
    }
}

export_policy!(IgnoresMaxRetriesTag);

fn main() {}
