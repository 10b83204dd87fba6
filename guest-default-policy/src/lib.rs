//! Dagster's run-retry semantics (dagster 1.13.29) as a plain Rust library over the contract's
//! model (`runretry-kit`).
//!
//! [`should_retry`] gives the complete decision for a failed run, [`select_steps`] the steps a
//! re-execution runs. The library has no Wasm in it: it is unit tested natively, benchmarked
//! natively, and reused by custom policies (see `examples/backoff-policy`). Built for
//! `wasm32-wasip2` with the `component` feature (the default), the crate also exports
//! [`DefaultPolicy`] as a runretry policy component.
//!
//! [`task::decide_task`] is the default task policy: what Airflow 3.3.2 does with a failed try
//! when no retry policy is set, its delay ([`airflow`]) exactly. [`DefaultPolicy`] exports both.

#![deny(missing_docs)]

pub mod airflow;
pub mod assets;
pub mod decide;
pub mod group;
pub mod parse;
pub mod rules;
pub mod select;
pub mod tags;
pub mod task;

pub use decide::{not_retried, should_retry};
pub use rules::Rules;
pub use select::select_steps;

use runretry_kit::{
    Decision, Failure, Policy, Run, RunRetries, Selection, Strategy, TaskCase, TaskDecision, TaskPolicy,
};

/// Dagster's semantics, unchanged, as a [`Policy`], and Airflow's, as a [`TaskPolicy`]: the
/// default policy.
pub struct DefaultPolicy;

impl Policy for DefaultPolicy {
    fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision {
        should_retry(run, failure, config)
    }

    fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String> {
        select_steps(run, strategy)
    }
}

impl TaskPolicy for DefaultPolicy {
    fn decide_task(task: &TaskCase) -> TaskDecision {
        task::decide_task(task)
    }
}

#[cfg(feature = "component")]
runretry_kit::export_policy!(DefaultPolicy, task: DefaultPolicy);
