//! What a policy is: functions over the model. Implement [`Policy`] (runs: Dagster) or
//! [`TaskPolicy`] (tasks: Airflow), or both, natively, test them with `cargo test`, and export
//! them from a component with [`export_policy!`](crate::export_policy).

use crate::model::{Decision, Failure, Run, RunRetries, Selection, Strategy};
use crate::task::{TaskCase, TaskDecision};

/// A run-retry policy written against the model types.
pub trait Policy {
    /// Decide what to do about a failed run: the whole job, in one call.
    fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision;

    /// What a re-execution of `run` with `strategy` runs, or the reason it cannot be
    /// re-executed that way. [`Selection::of_steps`] builds the answer of a policy that
    /// selects steps only.
    fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String>;
}

/// A task-retry policy written against the model types (Airflow 3.3's `RetryPolicy`).
pub trait TaskPolicy {
    /// Decide what to do about a task's failed try.
    fn decide_task(task: &TaskCase) -> TaskDecision;
}
