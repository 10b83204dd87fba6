//! Conversions between the JSON case format and the WIT types, both ways.

use crate::bindings::runretry::policy::types as wit;
use crate::case::{self, BackfillStatus, RunStatus, StepStatus};
use crate::decision::{Action, Decision, Strategy};

fn tags(tags: &case::Tags) -> wit::Tags {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn run_status(s: RunStatus) -> wit::RunStatus {
    match s {
        RunStatus::Queued => wit::RunStatus::Queued,
        RunStatus::NotStarted => wit::RunStatus::NotStarted,
        RunStatus::Managed => wit::RunStatus::Managed,
        RunStatus::Starting => wit::RunStatus::Starting,
        RunStatus::Started => wit::RunStatus::Started,
        RunStatus::Success => wit::RunStatus::Success,
        RunStatus::Failure => wit::RunStatus::Failure,
        RunStatus::Canceling => wit::RunStatus::Canceling,
        RunStatus::Canceled => wit::RunStatus::Canceled,
    }
}

fn step_status(s: StepStatus) -> wit::StepStatus {
    match s {
        StepStatus::Success => wit::StepStatus::Success,
        StepStatus::Failure => wit::StepStatus::Failure,
        StepStatus::Skipped => wit::StepStatus::Skipped,
        StepStatus::InProgress => wit::StepStatus::InProgress,
        StepStatus::NotStarted => wit::StepStatus::NotStarted,
        StepStatus::ResourceInitFailure => wit::StepStatus::ResourceInitFailure,
        StepStatus::Mapped => wit::StepStatus::Mapped,
    }
}

fn backfill_status(s: BackfillStatus) -> wit::BackfillStatus {
    match s {
        BackfillStatus::Requested => wit::BackfillStatus::Requested,
        BackfillStatus::Canceling => wit::BackfillStatus::Canceling,
        BackfillStatus::Failing => wit::BackfillStatus::Failing,
        BackfillStatus::Completed => wit::BackfillStatus::Completed,
        BackfillStatus::Failed => wit::BackfillStatus::Failed,
        BackfillStatus::Canceled => wit::BackfillStatus::Canceled,
        BackfillStatus::CompletedSuccess => wit::BackfillStatus::CompletedSuccess,
        BackfillStatus::CompletedFailed => wit::BackfillStatus::CompletedFailed,
    }
}

/// The case's run as the guest sees it. An absent group becomes `[this run]`.
pub fn run_to_wit(run: &case::Run) -> wit::Run {
    let group = match &run.group {
        Some(members) => members
            .iter()
            .map(|m| wit::GroupMember {
                run_id: m.run_id.clone(),
                parent_run_id: m.parent_run_id.clone(),
                tags: tags(&m.tags),
                status: m.status.map(run_status),
                exists: m.exists,
            })
            .collect(),
        None => vec![wit::GroupMember {
            run_id: run.run_id.clone(),
            parent_run_id: run.parent_run_id.clone(),
            tags: tags(&run.tags),
            status: Some(run_status(run.status)),
            exists: true,
        }],
    };
    wit::Run {
        run_id: run.run_id.clone(),
        status: run_status(run.status),
        tags: tags(&run.tags),
        root_run_id: run.root_run_id.clone(),
        parent_run_id: run.parent_run_id.clone(),
        group,
        steps: run
            .steps
            .iter()
            .map(|s| wit::Step {
                key: s.key.clone(),
                upstream: s.upstream.clone(),
                status: step_status(s.status),
                instances: s
                    .instances
                    .iter()
                    .flatten()
                    .map(|(k, st)| wit::MappedInstance { mapping_key: k.clone(), status: step_status(*st) })
                    .collect(),
                dynamic_output: s.dynamic_output,
                mapping_keys: s.mapping_keys.clone(),
            })
            .collect(),
        step_keys_to_execute: run.step_keys_to_execute.clone(),
        op_selection: run.op_selection.clone(),
        job_tags: tags(&run.job_tags),
        backfill: run.backfill.as_ref().map(|b| wit::Backfill {
            id: b.id.clone(),
            exists: b.exists,
            // A deleted backfill has no status; the contract's field is not optional, so it
            // reads as a terminal one: a policy that forgets to check `exists` still refuses.
            status: b.status.map_or(wit::BackfillStatus::Canceled, backfill_status),
        }),
        job: run.job.clone(),
    }
}

/// The failure; a reason string the enum does not know travels as `other`.
pub fn failure_to_wit(failure: &case::Failure) -> wit::Failure {
    let reason = failure.reason.as_deref().map(|r| match r {
        "STEP_FAILURE" => wit::FailureReason::StepFailure,
        "RUN_EXCEPTION" => wit::FailureReason::RunException,
        "UNEXPECTED_TERMINATION" => wit::FailureReason::UnexpectedTermination,
        "JOB_INITIALIZATION_FAILURE" => wit::FailureReason::JobInitializationFailure,
        "START_TIMEOUT" => wit::FailureReason::StartTimeout,
        "RUN_WORKER_RESTART" => wit::FailureReason::RunWorkerRestart,
        "UNKNOWN" => wit::FailureReason::Unknown,
        other => wit::FailureReason::Other(other.to_string()),
    });
    wit::Failure { reason, message: failure.message.clone() }
}

/// The `run_retries` config.
pub fn config_to_wit(config: &case::Config) -> wit::Config {
    wit::Config {
        enabled: config.enabled,
        max_retries: config.max_retries,
        retry_on_asset_or_op_failure: config.retry_on_asset_or_op_failure,
    }
}

/// A strategy, host side to guest side.
pub fn strategy_to_wit(strategy: Strategy) -> wit::RetryStrategy {
    match strategy {
        Strategy::AllSteps => wit::RetryStrategy::AllSteps,
        Strategy::FromFailure => wit::RetryStrategy::FromFailure,
        Strategy::FromAssetFailure => wit::RetryStrategy::FromAssetFailure,
    }
}

fn strategy_from_wit(strategy: wit::RetryStrategy) -> Strategy {
    match strategy {
        wit::RetryStrategy::AllSteps => Strategy::AllSteps,
        wit::RetryStrategy::FromFailure => Strategy::FromFailure,
        wit::RetryStrategy::FromAssetFailure => Strategy::FromAssetFailure,
    }
}

/// The guest's decision in JSON form (not yet checked against the contract: see `validate`).
pub fn decision_from_wit(d: wit::Decision) -> Decision {
    let action = match d.action {
        wit::Action::LaunchNew => Action::LaunchNew,
        wit::Action::ResubmitExisting => Action::ResubmitExisting,
        wit::Action::None => Action::None,
    };
    Decision {
        action,
        retry: action == Action::LaunchNew,
        retry_number: d.retry_number,
        strategy: d.strategy.map(strategy_from_wit),
        steps: d.steps,
        new_run_tags: d.new_run_tags.into_iter().collect(),
        failed_run_tags: d.failed_run_tags.into_iter().collect(),
        resubmit_run_id: d.resubmit_run_id,
        delay_seconds: d.delay_seconds,
        events: d.events,
        reason: d.reason,
    }
}

/// Bytes of text in a run: what the input cap is measured against.
pub fn input_size(run: &case::Run) -> usize {
    let tags = |t: &case::Tags| t.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let strings = |v: &[String]| v.iter().map(String::len).sum::<usize>();
    run.run_id.len()
        + tags(&run.tags)
        + tags(&run.job_tags)
        + run.group.iter().flatten().map(|m| m.run_id.len() + tags(&m.tags)).sum::<usize>()
        + run
            .steps
            .iter()
            .map(|s| {
                s.key.len()
                    + strings(&s.upstream)
                    + strings(&s.mapping_keys)
                    + s.instances.iter().flatten().map(|(k, _)| k.len()).sum::<usize>()
            })
            .sum::<usize>()
        + run.step_keys_to_execute.as_deref().map_or(0, strings)
}
