//! Dagster's run-retry semantics, with a circuit breaker across runs.
//!
//! A job that fails the same way on every scheduled tick gets `1 + max_retries` runs per tick
//! from Dagster, forever. This policy reads the job's recent runs (`run.history`): when the last
//! K run groups before this one all ended in a failure with this failure's cause, within a
//! window, the circuit is open and the run is not retried. The decision says so in `reason` and
//! `events`, and tags the failed run `runretry/circuit: open`. A success of the job closes the
//! circuit: the next failure is retried by Dagster's rules again. Otherwise the decision is
//! exactly the default policy's.
//!
//! The cause of a failure is its failure reason and its error (`failure.message`,
//! `history[].failure_message`: the error's class and message, then each cause's after "The
//! above exception was caused by: ", as the Dagster integration writes them): the first line of
//! the error and the first line of its innermost cause, with every run of digits read as `#`, so
//! "timeout after 31 s" and "timeout after 30 s" are the same cause. For a step failure that is
//! the step (Dagster's wrapper error names it) and the exception it raised. Configured per run
//! (or per job, through job tags) by tags:
//!
//! | tag | default | meaning |
//! |---|---|---|
//! | `runretry/circuit_threshold` | 5 | earlier run groups that must have failed this way (K) |
//! | `runretry/circuit_window_seconds` | 86400 | how far back from `failure.now` they count |
//!
//! The history the orchestrator sends is bounded (`runretry_sensor(history_runs=100,
//! history_seconds=7 days)`): K run groups of `1 + max_retries` runs must fit in it.
//!
//! For Airflow tasks (the task interface) the breaker reads the task's outcomes in the DAG's
//! earlier runs (`task.history`): when the last [`TASK_THRESHOLD`] of them within a day all
//! ended failed, the try fails at once instead of using up its retries. Airflow keeps no
//! exception of an earlier run, so "the same way" is "failed" there. Otherwise the decision is
//! Airflow's own.

use runretry_kit::{
    duration_words, export_policy, number_tag, set_tag, Action, Decision, Failure, FailureReason, HistoryRun, Policy,
    Run, RunRetries, RunStatus, Selection, Strategy, TaskAction, TaskCase, TaskDecision, TaskPolicy, TaskState,
};

/// The tag this policy writes on a run it did not retry because the circuit is open.
pub const CIRCUIT_TAG: &str = "runretry/circuit";

// ANCHOR: cause
/// What a failure is, for "failed the same way": the reason, and the first lines of the error
/// and of its innermost cause with digits masked.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    reason: String,
    error: String,
}

impl Cause {
    pub fn new(reason: Option<&FailureReason>, message: Option<&str>) -> Self {
        let mut parts = message.unwrap_or_default().split(CAUSED_BY);
        let error = first_line(parts.next().unwrap_or_default());
        let error = match parts.last() {
            Some(innermost) => format!("{error} <- {}", first_line(innermost)),
            None => error,
        };
        Cause { reason: reason.map_or("no reason", FailureReason::as_str).to_string(), error }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.error.as_str() {
            "" => write!(f, "{}", self.reason),
            error => write!(f, "{}: {error}", self.reason),
        }
    }
}

/// What joins an error to its cause in a failure message.
const CAUSED_BY: &str = "The above exception was caused by: ";

/// The first non-blank line of `text`, trimmed, each run of ASCII digits replaced by `#`.
fn first_line(text: &str) -> String {
    let line = text.split('\n').map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let mut masked = String::with_capacity(line.len());
    for c in line.chars() {
        if !c.is_ascii_digit() {
            masked.push(c);
        } else if !masked.ends_with('#') {
            masked.push('#');
        }
    }
    masked
}
// ANCHOR_END: cause

/// How a run group ended, read from its newest run in the history.
#[derive(Debug, PartialEq)]
enum Outcome {
    Succeeded,
    Failed(Cause),
}

// ANCHOR: breaker
/// The breaker's settings, from the run's tags.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub threshold: usize,
    pub window_seconds: f64,
}

impl Settings {
    pub fn of(run: &Run, events: &mut Vec<String>) -> Self {
        let threshold = number_tag(&run.tags, "runretry/circuit_threshold", 5.0, 1.0, events) as usize;
        let window_seconds = number_tag(&run.tags, "runretry/circuit_window_seconds", 86_400.0, 0.0, events);
        Settings { threshold, window_seconds }
    }
}

/// The earlier run groups' outcomes, newest first: one per group (its newest run), this run's
/// own group left out, groups whose newest run neither succeeded nor failed (canceled, still
/// running) skipped, stopping at the first group older than the window.
fn earlier_outcomes<'a>(run: &'a Run, now: Option<f64>, window_seconds: f64) -> impl Iterator<Item = Outcome> + 'a {
    let mut seen: Vec<&str> = vec![run.group_root()];
    run.history
        .iter()
        .take_while(move |past| match (now, past.time()) {
            (Some(now), Some(time)) => time >= now - window_seconds,
            _ => true,
        })
        .filter_map(move |past: &HistoryRun| {
            if seen.contains(&past.group_root()) {
                return None;
            }
            seen.push(past.group_root());
            match past.status {
                RunStatus::Success => Some(Outcome::Succeeded),
                RunStatus::Failure => {
                    Some(Outcome::Failed(Cause::new(past.failure_reason.as_ref(), past.failure_message.as_deref())))
                }
                _ => None,
            }
        })
}

/// `Some(cause)` when the circuit is open for this failure: the last `threshold` earlier run
/// groups within the window all failed with this failure's cause.
pub fn open_circuit(run: &Run, failure: &Failure, settings: Settings) -> Option<Cause> {
    let cause = Cause::new(failure.reason.as_ref(), failure.message.as_deref());
    let same = earlier_outcomes(run, failure.now, settings.window_seconds)
        .take(settings.threshold)
        .filter(|outcome| *outcome == Outcome::Failed(cause.clone()))
        .count();
    (same == settings.threshold).then_some(cause)
}
// ANCHOR_END: breaker

struct CircuitBreakerPolicy;

// ANCHOR: policy
impl Policy for CircuitBreakerPolicy {
    fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision {
        let decision = runretry_default_policy::should_retry(run, failure, config);
        if decision.action != Action::LaunchNew {
            return decision;
        }
        let mut notes = Vec::new();
        let settings = Settings::of(run, &mut notes);
        let Some(cause) = open_circuit(run, failure, settings) else {
            let mut decision = decision;
            decision.events.extend(notes);
            return decision;
        };
        let job = run.job.as_deref().unwrap_or("this job");
        let why = format!(
            "circuit open: the last {} run groups of {job} within {} failed as this run did ({cause}); \
             no retry until a run of the job succeeds",
            settings.threshold,
            duration_words(settings.window_seconds)
        );
        let mut decision = runretry_default_policy::not_retried(decision, why.clone());
        decision.events.extend(notes);
        decision.events.push(why);
        set_tag(&mut decision.failed_run_tags, CIRCUIT_TAG, "open");
        decision
    }

    fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String> {
        runretry_default_policy::select_steps(run, strategy)
    }
}
// ANCHOR_END: policy

// ANCHOR: task-policy
/// Earlier runs of a task that must all have failed for the circuit to open.
pub const TASK_THRESHOLD: usize = 3;
/// How far back from the failed try they count, in seconds.
pub const TASK_WINDOW_SECONDS: f64 = 86_400.0;

/// Whether the task's last [`TASK_THRESHOLD`] earlier runs within the window all failed (runs
/// that neither failed nor succeeded, such as skipped ones, are passed over).
pub fn task_circuit_open(task: &TaskCase) -> bool {
    let failed = task
        .history
        .iter()
        .take_while(|past| match (task.now, past.end_time) {
            (Some(now), Some(end)) => end >= now - TASK_WINDOW_SECONDS,
            _ => true,
        })
        .filter(|past| matches!(past.state, TaskState::Success | TaskState::Failed))
        .take(TASK_THRESHOLD)
        .filter(|past| past.state == TaskState::Failed)
        .count();
    failed == TASK_THRESHOLD
}

impl TaskPolicy for CircuitBreakerPolicy {
    fn decide_task(task: &TaskCase) -> TaskDecision {
        let decision = runretry_default_policy::task::decide_task(task);
        if decision.action != TaskAction::Retry || !task_circuit_open(task) {
            return decision;
        }
        let why = format!(
            "circuit open: {} failed in the last {TASK_THRESHOLD} runs of {} within {}; no retry until it succeeds",
            task.task_id,
            task.dag_id,
            duration_words(TASK_WINDOW_SECONDS)
        );
        TaskDecision { events: vec![format!("{CIRCUIT_TAG}: open")], ..TaskDecision::fail(why) }
    }
}
// ANCHOR_END: task-policy

export_policy!(CircuitBreakerPolicy, task: CircuitBreakerPolicy);

// The policy is plain Rust: its tests run natively (`cargo test`), no Wasm involved.
#[cfg(test)]
mod tests {
    use super::*;
    use runretry_kit::{conformance, tag};

    const NOW: f64 = 1_764_800_000.0;

    fn past(id: &str, root: Option<&str>, status: RunStatus, message: &str, age: f64) -> HistoryRun {
        HistoryRun {
            root_run_id: root.map(Into::into),
            retry_number: root.map(|_| 1),
            launched_by: runretry_kit::LaunchOrigin::Schedule,
            start_time: Some(NOW - age),
            end_time: Some(NOW - age + 5.0),
            failure_reason: (status == RunStatus::Failure).then_some(FailureReason::StepFailure),
            failure_message: (status == RunStatus::Failure).then(|| message.to_string()),
            ..HistoryRun::new(id, status)
        }
    }

    fn failure(message: &str) -> Failure {
        Failure { message: Some(message.into()), now: Some(NOW), ..Failure::new(Some(FailureReason::StepFailure)) }
    }

    fn storm(groups: usize) -> Run {
        let mut run = Run::new("now", RunStatus::Failure);
        run.tags.push(("runretry/circuit_threshold".into(), "3".into()));
        for g in 0..groups {
            let root = format!("root-{g}");
            // Newest first: the group's retry, then its root.
            run.history.push(past(
                &format!("retry-{g}"),
                Some(&root),
                RunStatus::Failure,
                "Exception: down (try 2)",
                60.0 * g as f64 + 30.0,
            ));
            run.history.push(past(&root, None, RunStatus::Failure, "Exception: down (try 1)", 60.0 * g as f64 + 40.0));
        }
        run
    }

    fn settings(run: &Run) -> Settings {
        Settings::of(run, &mut Vec::new())
    }

    #[test]
    fn the_same_cause_in_the_last_k_groups_opens_the_circuit() {
        let run = storm(3);
        let cause = open_circuit(&run, &failure("Exception: down (try 7)"), settings(&run)).unwrap();
        assert_eq!(cause.to_string(), "STEP_FAILURE: Exception: down (try #)");
    }

    #[test]
    fn a_chained_error_is_its_first_line_and_its_innermost_cause() {
        let message = "DagsterExecutionStepExecutionError: Error occurred while executing op \"load\":\n\nThe above \
                       exception was caused by: OSError: disk 3 full\n  File \"x.py\", line 12";
        let cause = Cause::new(Some(&FailureReason::StepFailure), Some(message));
        assert_eq!(
            cause.to_string(),
            "STEP_FAILURE: DagsterExecutionStepExecutionError: Error occurred while executing op \"load\": <- OSError: disk # full"
        );
    }

    #[test]
    fn fewer_groups_than_the_threshold_keep_it_closed() {
        let run = storm(2);
        assert_eq!(open_circuit(&run, &failure("Exception: down (try 1)"), settings(&run)), None);
    }

    #[test]
    fn another_cause_keeps_it_closed() {
        let run = storm(3);
        assert_eq!(open_circuit(&run, &failure("KeyError: 'id'"), settings(&run)), None);
    }

    #[test]
    fn a_success_closes_it() {
        let mut run = storm(3);
        run.history.insert(0, past("fixed", None, RunStatus::Success, "", 10.0));
        assert_eq!(open_circuit(&run, &failure("Exception: down"), settings(&run)), None);
    }

    #[test]
    fn a_group_that_failed_then_succeeded_counts_as_a_success() {
        let mut run = storm(3);
        run.history[0].status = RunStatus::Success;
        assert_eq!(open_circuit(&run, &failure("Exception: down"), settings(&run)), None);
    }

    #[test]
    fn groups_older_than_the_window_do_not_count() {
        let mut run = storm(3);
        run.tags.push(("runretry/circuit_window_seconds".into(), "100".into()));
        assert_eq!(open_circuit(&run, &failure("Exception: down"), settings(&run)), None);
    }

    #[test]
    fn this_runs_own_group_does_not_count() {
        let mut run = storm(3);
        run.root_run_id = Some("root-0".into());
        assert_eq!(open_circuit(&run, &failure("Exception: down"), settings(&run)), None);
    }

    #[test]
    fn an_open_circuit_declines_the_retry_and_says_why() {
        let mut run = storm(3);
        run.steps = vec![runretry_kit::Step::new("op", &[], runretry_kit::StepStatus::Failure)];
        run.job = Some("storm".into());
        let config =
            RunRetries { enabled: true, max_retries: 2, retry_on_asset_or_op_failure: true, ..RunRetries::default() };
        let decision = CircuitBreakerPolicy::should_retry(&run, &failure("Exception: down (try 3)"), &config);
        assert_eq!(decision.action, Action::None);
        assert_eq!(tag(&decision.failed_run_tags, CIRCUIT_TAG), Some("open"));
        assert_eq!(tag(&decision.failed_run_tags, "dagster/will_retry"), Some("false"));
        assert!(
            decision.reason.starts_with("circuit open: the last 3 run groups of storm within 24 h"),
            "{}",
            decision.reason
        );
        assert_eq!(decision.events.last(), Some(&decision.reason));
    }

    #[test]
    fn a_bad_threshold_is_reported_and_the_default_used() {
        let mut run = storm(1);
        run.tags[0].1 = "zero".into();
        let mut events = Vec::new();
        assert_eq!(Settings::of(&run, &mut events).threshold, 5);
        assert_eq!(events, ["Ignoring tag runretry/circuit_threshold=\"zero\": not a number >= 1; using 5"]);
    }

    #[test]
    fn the_example_task_cases_pass_natively() {
        let cases = conformance::load_task_cases(concat!(env!("CARGO_MANIFEST_DIR"), "/cases").as_ref()).unwrap();
        let report = conformance::run_native_tasks::<CircuitBreakerPolicy>(&cases, &[]);
        assert!(report.failures.is_empty() && report.passed > 0, "{report}");
    }

    #[test]
    fn the_example_cases_pass_natively() {
        let cases = conformance::load_cases(concat!(env!("CARGO_MANIFEST_DIR"), "/cases").as_ref()).unwrap();
        let report = conformance::run_native::<CircuitBreakerPolicy>(&cases, &[]);
        assert!(report.failures.is_empty() && report.passed > 0, "{report}");
    }

    fn task_with_history(states: &[TaskState]) -> TaskCase {
        let exception = runretry_kit::ExceptionInfo::new("builtins.ConnectionError", "reset");
        let mut task = TaskCase::new("etl", "load", "scheduled__5", 1, 2, exception);
        task.now = Some(1_000_000.0);
        task.history = states
            .iter()
            .enumerate()
            .map(|(i, state)| runretry_kit::TaskRun {
                end_time: Some(1_000_000.0 - 3600.0 * (i as f64 + 1.0)),
                ..runretry_kit::TaskRun::new(&format!("scheduled__{i}"), *state)
            })
            .collect();
        task
    }

    #[test]
    fn a_task_that_failed_in_its_last_three_runs_fails_at_once() {
        let d = CircuitBreakerPolicy::decide_task(&task_with_history(&[TaskState::Failed; 3]));
        assert_eq!(d.action, TaskAction::Fail);
        assert!(d.reason.starts_with("circuit open: load failed in the last 3 runs of etl"), "{}", d.reason);
        let skipped_between = [TaskState::Failed, TaskState::Skipped, TaskState::Failed, TaskState::Failed];
        assert_eq!(CircuitBreakerPolicy::decide_task(&task_with_history(&skipped_between)).action, TaskAction::Fail);
    }

    #[test]
    fn a_success_or_a_short_history_keeps_airflows_decision() {
        for states in [&[TaskState::Failed, TaskState::Success, TaskState::Failed][..], &[TaskState::Failed; 2]] {
            let task = task_with_history(states);
            assert_eq!(CircuitBreakerPolicy::decide_task(&task), runretry_default_policy::task::decide_task(&task));
        }
    }

    #[test]
    fn failures_older_than_a_day_do_not_count() {
        let mut task = task_with_history(&[TaskState::Failed; 3]);
        task.history[2].end_time = Some(1_000_000.0 - 2.0 * 86_400.0);
        assert_eq!(CircuitBreakerPolicy::decide_task(&task).action, TaskAction::Retry);
    }
}
