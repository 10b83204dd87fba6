//! The model (`runretry-kit`) to the types wasmtime generates from the WIT, and back. The two
//! mirror each other record for record, so this is naming, not logic.

use runretry_kit::{
    Action, BackfillStatus, Config, Decision, Failure, FailureReason, Run, RunStatus, StepStatus, Strategy,
};

use crate::bindings::runretry::policy::types as wit;

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

/// The run as the guest sees it.
pub(crate) fn run_to_wit(run: &Run) -> wit::Run {
    wit::Run {
        run_id: run.run_id.clone(),
        status: run_status(run.status),
        tags: run.tags.clone(),
        root_run_id: run.root_run_id.clone(),
        parent_run_id: run.parent_run_id.clone(),
        group: run
            .group
            .iter()
            .map(|m| wit::GroupMember {
                run_id: m.run_id.clone(),
                parent_run_id: m.parent_run_id.clone(),
                tags: m.tags.clone(),
                status: m.status.map(run_status),
                exists: m.exists,
            })
            .collect(),
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
                    .map(|i| wit::MappedInstance { mapping_key: i.mapping_key.clone(), status: step_status(i.status) })
                    .collect(),
                dynamic_output: s.dynamic_output,
                mapping_keys: s.mapping_keys.clone(),
            })
            .collect(),
        step_keys_to_execute: run.step_keys_to_execute.clone(),
        op_selection: run.op_selection.clone(),
        job_tags: run.job_tags.clone(),
        backfill: run.backfill.as_ref().map(|b| wit::Backfill {
            id: b.id.clone(),
            exists: b.exists,
            status: backfill_status(b.status),
        }),
        job: run.job.clone(),
    }
}

/// The failure; a reason the contract does not know travels as `other`.
pub(crate) fn failure_to_wit(failure: &Failure) -> wit::Failure {
    let reason = failure.reason.as_ref().map(|r| match r {
        FailureReason::StepFailure => wit::FailureReason::StepFailure,
        FailureReason::RunException => wit::FailureReason::RunException,
        FailureReason::UnexpectedTermination => wit::FailureReason::UnexpectedTermination,
        FailureReason::JobInitializationFailure => wit::FailureReason::JobInitializationFailure,
        FailureReason::StartTimeout => wit::FailureReason::StartTimeout,
        FailureReason::RunWorkerRestart => wit::FailureReason::RunWorkerRestart,
        FailureReason::Unknown => wit::FailureReason::Unknown,
        FailureReason::Other(text) => wit::FailureReason::Other(text.clone()),
    });
    wit::Failure { reason, message: failure.message.clone() }
}

/// The `run_retries` config.
pub(crate) fn config_to_wit(config: &Config) -> wit::Config {
    wit::Config {
        enabled: config.enabled,
        max_retries: config.max_retries,
        retry_on_asset_or_op_failure: config.retry_on_asset_or_op_failure,
    }
}

/// A strategy, host side to guest side.
pub(crate) fn strategy_to_wit(strategy: Strategy) -> wit::RetryStrategy {
    match strategy {
        Strategy::AllSteps => wit::RetryStrategy::AllSteps,
        Strategy::FromFailure => wit::RetryStrategy::FromFailure,
        Strategy::FromAssetFailure => wit::RetryStrategy::FromAssetFailure,
    }
}

/// The guest's decision, moved into the model as it is: not yet checked (see `validate`).
pub(crate) fn decision_from_wit(d: wit::Decision) -> Decision {
    Decision {
        action: match d.action {
            wit::Action::LaunchNew => Action::LaunchNew,
            wit::Action::ResubmitExisting => Action::ResubmitExisting,
            wit::Action::None => Action::None,
        },
        retry_number: d.retry_number,
        strategy: d.strategy.map(|s| match s {
            wit::RetryStrategy::AllSteps => Strategy::AllSteps,
            wit::RetryStrategy::FromFailure => Strategy::FromFailure,
            wit::RetryStrategy::FromAssetFailure => Strategy::FromAssetFailure,
        }),
        steps: d.steps,
        new_run_tags: d.new_run_tags,
        failed_run_tags: d.failed_run_tags,
        resubmit_run_id: d.resubmit_run_id,
        delay_seconds: d.delay_seconds,
        events: d.events,
        reason: d.reason,
    }
}

/// Bytes of text in a run: what the input cap is measured against.
pub(crate) fn input_size(run: &Run) -> usize {
    let tags = |t: &[(String, String)]| t.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let strings = |v: &[String]| v.iter().map(String::len).sum::<usize>();
    run.run_id.len()
        + tags(&run.tags)
        + tags(&run.job_tags)
        + run.group.iter().map(|m| m.run_id.len() + tags(&m.tags)).sum::<usize>()
        + run
            .steps
            .iter()
            .map(|s| {
                s.key.len()
                    + strings(&s.upstream)
                    + strings(&s.mapping_keys)
                    + s.instances.iter().map(|i| i.mapping_key.len()).sum::<usize>()
            })
            .sum::<usize>()
        + run.step_keys_to_execute.as_deref().map_or(0, strings)
}
