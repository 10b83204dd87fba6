//! Retry infrastructure failures, fail fast on user errors.
//!
//! What users ask orchestrators for and rarely get: a run killed by the platform (OOM, spot
//! preemption, a worker that never started, a crash with no reason recorded) is retried within
//! Dagster's budget, and after an OOM the retry asks for more memory; a failure in the user's
//! own code is retried at most once, however generous `max_retries` is.
//!
//! How a failure is classified, first match wins:
//! 1. the orchestrator's tag `runretry/infra_failure` (`oom`, `preempted`, `start_timeout`, `crash`);
//! 2. `failure.message`, for the usual OOM and preemption wording;
//! 3. the failure reason: none, `UNEXPECTED_TERMINATION`, `RUN_WORKER_RESTART`,
//!    `JOB_INITIALIZATION_FAILURE` are crashes, `START_TIMEOUT` a start timeout;
//!    `STEP_FAILURE` and `RUN_EXCEPTION` are user errors.
//!
//! After an OOM the retry's `runretry/memory_mb` tag is doubled (from the run's tag, default
//! 2048), capped by `runretry/memory_max_mb` (default 65536): the orchestrator maps it to its
//! resource requests.

use runretry_kit::{
    export_policy, set_tag, tag, Action, Decision, Failure, FailureReason, Policy, Run, RunRetries, Selection, Strategy,
};

// ANCHOR: classify
/// What kind of failure this was.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    OutOfMemory,
    Preempted,
    StartTimeout,
    Crash,
    UserError,
}

fn classify(run: &Run, failure: &Failure) -> Kind {
    match tag(&run.tags, "runretry/infra_failure") {
        Some("oom") => return Kind::OutOfMemory,
        Some("preempted") => return Kind::Preempted,
        Some("start_timeout") => return Kind::StartTimeout,
        Some("crash") => return Kind::Crash,
        _ => {}
    }
    let message = failure.message.as_deref().unwrap_or_default().to_lowercase();
    let mentions = |words: &[&str]| words.iter().any(|w| message.contains(w));
    if mentions(&["oomkilled", "out of memory", "exit code 137", "memory limit exceeded"]) {
        return Kind::OutOfMemory;
    }
    if mentions(&["preempted", "spot interruption", "node was terminated", "evicted"]) {
        return Kind::Preempted;
    }
    match &failure.reason {
        None
        | Some(FailureReason::UnexpectedTermination)
        | Some(FailureReason::RunWorkerRestart)
        | Some(FailureReason::JobInitializationFailure) => Kind::Crash,
        Some(FailureReason::StartTimeout) => Kind::StartTimeout,
        _ => Kind::UserError,
    }
}
// ANCHOR_END: classify

/// The next memory request after an OOM: double, within the cap.
fn raised_memory_mb(run: &Run) -> u64 {
    let read = |key: &str, default: u64| tag(&run.tags, key).and_then(|v| v.trim().parse().ok()).unwrap_or(default);
    let current = read("runretry/memory_mb", 2048);
    let cap = read("runretry/memory_max_mb", 65536);
    current.saturating_mul(2).min(cap).max(current.min(cap))
}

struct InfraOnlyPolicy;

// ANCHOR: policy
impl Policy for InfraOnlyPolicy {
    fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision {
        let kind = classify(run, failure);
        if kind == Kind::UserError {
            let mut decision = runretry_default_policy::should_retry(run, failure, config);
            if decision.action == Action::LaunchNew && decision.retry_number > Some(1) {
                decision = runretry_default_policy::not_retried(
                    decision,
                    "a user error gets at most one retry, and this run group has had it",
                );
            } else {
                decision.reason = format!("user error ({}): {}", reason_name(failure), decision.reason);
            }
            return decision;
        }
        // A platform failure is retried even where step failures are not: an OOM kill often
        // surfaces as a STEP_FAILURE of the step that was killed.
        let mut run = run.clone();
        run.tags.retain(|(key, _)| key != "dagster/retry_on_asset_or_op_failure");
        let config = RunRetries { retry_on_asset_or_op_failure: true, ..*config };
        let mut decision = runretry_default_policy::should_retry(&run, failure, &config);
        let what = match kind {
            Kind::OutOfMemory => "killed for running out of memory",
            Kind::Preempted => "preempted by the platform",
            Kind::StartTimeout => "timed out before starting",
            _ => "crashed without a user error",
        };
        if decision.action == Action::LaunchNew && kind == Kind::OutOfMemory {
            let memory = raised_memory_mb(&run);
            set_tag(&mut decision.new_run_tags, "runretry/memory_mb", &memory.to_string());
            decision.reason =
                format!("the run was {what}; retrying with runretry/memory_mb={memory} ({})", decision.reason);
        } else {
            decision.reason = format!("the run was {what}: {}", decision.reason);
        }
        decision
    }

    fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String> {
        runretry_default_policy::select_steps(run, strategy)
    }
}
// ANCHOR_END: policy

fn reason_name(failure: &Failure) -> &str {
    failure.reason.as_ref().map_or("no reason", FailureReason::as_str)
}

export_policy!(InfraOnlyPolicy);
