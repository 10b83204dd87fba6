//! Dagster's run-retry semantics, within a budget of automatic retries per job.
//!
//! `max_retries` bounds one run group. A job that fails on every tick of a frequent schedule
//! still gets `max_retries` retries per tick, all day. This policy also bounds the job: at most B
//! automatic retries (runs with `dagster/retry_number`, in `run.history`) per rolling window, by
//! default 10 per 24 h, across all of the job's run groups. Within the budget the decision is the
//! default policy's, its reason saying how much of the budget is used; past it the run is not
//! retried, the decision says why and tags the failed run `runretry/retry_budget: spent`.
//! Configured per run (or per job, through job tags) by tags:
//!
//! | tag | default | meaning |
//! |---|---|---|
//! | `runretry/retry_budget` | 10 | automatic retries allowed per window (B) |
//! | `runretry/retry_budget_window_seconds` | 86400 | the rolling window, back from `failure.now` |
//!
//! The history the orchestrator sends is bounded (`runretry_sensor(history_runs=100,
//! history_seconds=7 days)`): the budget counts only the runs it holds, so keep B well under
//! `history_runs`. A retry that has not started yet counts; so does every retry when the case
//! has no `failure.now`.

use runretry_kit::{
    duration_words, export_policy, number_tag, set_tag, Action, Decision, Failure, HistoryRun, Policy, Run, RunRetries,
    Selection, Strategy,
};

/// The tag this policy writes on a run it did not retry because the budget is spent.
pub const BUDGET_TAG: &str = "runretry/retry_budget";

// ANCHOR: budget
/// The budget's settings, from the run's tags.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub retries: u64,
    pub window_seconds: f64,
}

impl Budget {
    pub fn of(run: &Run, events: &mut Vec<String>) -> Self {
        let retries = number_tag(&run.tags, "runretry/retry_budget", 10.0, 0.0, events) as u64;
        let window_seconds = number_tag(&run.tags, "runretry/retry_budget_window_seconds", 86_400.0, 0.0, events);
        Budget { retries, window_seconds }
    }
}

/// Automatic retries of the job in the window: earlier runs with a retry number that started
/// (or, never started, ended) no earlier than `now - window`; one without any time counts.
pub fn retries_used(run: &Run, now: Option<f64>, window_seconds: f64) -> u64 {
    let in_window = |past: &HistoryRun| match (now, past.time()) {
        (Some(now), Some(time)) => time >= now - window_seconds,
        _ => true,
    };
    run.history.iter().filter(|past| past.retry_number.is_some_and(|n| n > 0) && in_window(past)).count() as u64
}
// ANCHOR_END: budget

struct RetryBudgetPolicy;

// ANCHOR: policy
impl Policy for RetryBudgetPolicy {
    fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision {
        let mut decision = runretry_default_policy::should_retry(run, failure, config);
        if decision.action != Action::LaunchNew {
            return decision;
        }
        let mut notes = Vec::new();
        let budget = Budget::of(run, &mut notes);
        let used = retries_used(run, failure.now, budget.window_seconds);
        let window = duration_words(budget.window_seconds);
        if used < budget.retries {
            decision.reason =
                format!("{}; retry {} of the job's {} per {window}", decision.reason, used + 1, budget.retries);
        } else {
            let why = format!(
                "retry budget spent: the job has had {used} automatic retries in the last {window}, its budget is {}",
                budget.retries
            );
            decision = runretry_default_policy::not_retried(decision, why.clone());
            decision.events.push(why);
            set_tag(&mut decision.failed_run_tags, BUDGET_TAG, "spent");
        }
        decision.events.splice(0..0, notes);
        decision
    }

    fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String> {
        runretry_default_policy::select_steps(run, strategy)
    }
}
// ANCHOR_END: policy

export_policy!(RetryBudgetPolicy);

// The policy is plain Rust: its tests run natively (`cargo test`), no Wasm involved.
#[cfg(test)]
mod tests {
    use super::*;
    use runretry_kit::{conformance, tag, FailureReason, LaunchOrigin, RunStatus, Step, StepStatus};

    const NOW: f64 = 1_764_800_000.0;

    fn past(retry_number: Option<u32>, age: Option<f64>) -> HistoryRun {
        HistoryRun {
            root_run_id: retry_number.map(|_| "root".into()),
            retry_number,
            launched_by: LaunchOrigin::Sensor,
            start_time: age.map(|a| NOW - a),
            failure_reason: Some(FailureReason::StepFailure),
            ..HistoryRun::new(&format!("past-{age:?}"), RunStatus::Failure)
        }
    }

    fn failed_run(history: Vec<HistoryRun>, budget: &str) -> Run {
        let mut run = Run::new("now", RunStatus::Failure);
        run.steps = vec![Step::new("op", &[], StepStatus::Failure)];
        run.tags.push(("runretry/retry_budget".into(), budget.into()));
        run.history = history;
        run
    }

    fn decide(run: &Run) -> Decision {
        let failure = Failure { now: Some(NOW), ..Failure::new(Some(FailureReason::StepFailure)) };
        let config =
            RunRetries { enabled: true, max_retries: 3, retry_on_asset_or_op_failure: true, ..RunRetries::default() };
        RetryBudgetPolicy::should_retry(run, &failure, &config)
    }

    #[test]
    fn counts_retries_in_the_window_only() {
        let run = failed_run(
            vec![past(Some(1), Some(60.0)), past(None, Some(90.0)), past(Some(2), Some(90_000.0)), past(Some(1), None)],
            "3",
        );
        assert_eq!(retries_used(&run, Some(NOW), 86_400.0), 2);
        assert_eq!(retries_used(&run, None, 86_400.0), 3);
    }

    #[test]
    fn within_the_budget_the_default_decision_stands() {
        let decision = decide(&failed_run(vec![past(Some(1), Some(60.0))], "2"));
        assert_eq!(decision.action, Action::LaunchNew);
        assert!(decision.reason.ends_with("; retry 2 of the job's 2 per 24 h"), "{}", decision.reason);
    }

    #[test]
    fn past_the_budget_no_retry_and_a_tag() {
        let decision = decide(&failed_run(vec![past(Some(1), Some(60.0)), past(Some(2), Some(120.0))], "2"));
        assert_eq!(decision.action, Action::None);
        assert_eq!(tag(&decision.failed_run_tags, BUDGET_TAG), Some("spent"));
        assert_eq!(
            decision.reason,
            "retry budget spent: the job has had 2 automatic retries in the last 24 h, its budget is 2"
        );
    }

    #[test]
    fn a_budget_of_zero_never_retries() {
        assert_eq!(decide(&failed_run(Vec::new(), "0")).action, Action::None);
    }

    #[test]
    fn a_bad_budget_is_reported_and_the_default_used() {
        let decision = decide(&failed_run(Vec::new(), "lots"));
        assert_eq!(decision.action, Action::LaunchNew);
        assert_eq!(decision.events[0], "Ignoring tag runretry/retry_budget=\"lots\": not a number >= 0; using 10");
    }

    #[test]
    fn the_example_cases_pass_natively() {
        let cases = conformance::load_cases(concat!(env!("CARGO_MANIFEST_DIR"), "/cases").as_ref()).unwrap();
        let report = conformance::run_native::<RetryBudgetPolicy>(&cases, &[]);
        assert!(report.failures.is_empty() && report.passed > 0, "{report}");
    }
}
