//! The default task policy: what Airflow 3.3.2 does with a failed try when no retry policy is
//! set, as a decision a custom task policy can start from (as run policies start from
//! [`should_retry`](crate::should_retry)).
//!
//! Airflow's rules, from `airflow/sdk/execution_time/task_runner.py` (`_handle_current_task_failed`
//! and `_finalize_task_failure`) and `TaskInstance.next_retry_datetime`:
//! 1. `AirflowFailException` (and its subclasses), `AirflowSensorTimeout` and
//!    `AirflowTaskTerminated` fail the task at once: Airflow never retries them.
//! 2. A try is retried while retries remain (`try_number <= max_tries`); the last one fails.
//! 3. The retry waits [`default_retry_delay`]: `retry_delay`, or with exponential backoff the
//!    jittered, capped delay. Answered as an explicit delay, it is the delay Airflow would
//!    compute itself (a retry's override is added to the try's end as it is).
//! 4. Where Airflow's own computation raises (a NaN backoff), the answer is `default`: Airflow
//!    then does what it does.

use runretry_kit::{TaskCase, TaskDecision};

use crate::airflow::{default_retry_delay, FailedTry};

/// The exceptions Airflow fails a task on without asking a policy (qualified names).
pub const NEVER_RETRIED: [&str; 3] = [
    "airflow.sdk.exceptions.AirflowFailException",
    "airflow.sdk.exceptions.AirflowSensorTimeout",
    "airflow.sdk.exceptions.AirflowTaskTerminated",
];

/// Airflow 3.3.2's own decision for `task`'s failed try.
pub fn decide_task(task: &TaskCase) -> TaskDecision {
    if let Some(never) = NEVER_RETRIED.iter().find(|name| task.exception.is_a(name)) {
        let short = never.rsplit('.').next().unwrap_or(never);
        return TaskDecision::fail(format!("Airflow never retries {short}: the task fails"));
    }
    if !task.retries_remain() {
        return TaskDecision::fail(format!(
            "try {} failed and no retries remain (max_tries {}): the task fails",
            task.try_number, task.max_tries
        ));
    }
    let failed = FailedTry {
        dag_id: &task.dag_id,
        task_id: &task.task_id,
        logical_date: task.logical_date.as_deref(),
        try_number: task.try_number,
    };
    match default_retry_delay(&task.settings, &failed) {
        Ok(delay) => TaskDecision::retry(
            Some(delay),
            format!(
                "try {} of {} failed: retry in {} as Airflow would",
                task.try_number,
                task.max_tries + 1,
                seconds_words(delay)
            ),
        ),
        Err(raised) => {
            TaskDecision::default(format!("Airflow's own retry delay raises here ({}): Airflow decides", raised.0))
        }
    }
}

/// `90 s`, `1.5 s`.
fn seconds_words(seconds: f64) -> String {
    format!("{seconds} s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use runretry_kit::{ExceptionInfo, TaskAction};

    fn failed_try(try_number: u32, retries: u32, exception: ExceptionInfo) -> TaskCase {
        TaskCase::new("etl", "load", "manual__1", try_number, retries, exception)
    }

    #[test]
    fn a_try_with_retries_left_is_retried_after_the_retry_delay() {
        let d = decide_task(&failed_try(1, 2, ExceptionInfo::new("builtins.ValueError", "boom")));
        assert_eq!((d.action, d.delay_seconds), (TaskAction::Retry, Some(300.0)));
    }

    #[test]
    fn the_last_try_fails() {
        let d = decide_task(&failed_try(3, 2, ExceptionInfo::new("builtins.ValueError", "boom")));
        assert_eq!((d.action, d.delay_seconds), (TaskAction::Fail, None));
        assert_eq!(
            decide_task(&failed_try(1, 0, ExceptionInfo::new("builtins.ValueError", "boom"))).action,
            TaskAction::Fail
        );
    }

    #[test]
    fn airflow_fail_exceptions_and_their_subclasses_fail_at_once() {
        let mut raised = ExceptionInfo::new("dags.etl.Permanent", "gone");
        raised.bases = vec!["airflow.sdk.exceptions.AirflowFailException".into(), "builtins.Exception".into()];
        let d = decide_task(&failed_try(1, 5, raised));
        assert_eq!(d.action, TaskAction::Fail);
        assert!(d.reason.contains("AirflowFailException"), "{}", d.reason);
    }

    #[test]
    fn a_nan_backoff_leaves_the_decision_to_airflow() {
        let mut case = failed_try(2, 5, ExceptionInfo::new("builtins.ValueError", "boom"));
        case.settings.retry_delay_seconds = 0.0;
        case.settings.retry_exponential_backoff = f64::INFINITY;
        assert_eq!(decide_task(&case).action, TaskAction::Default);
    }
}
