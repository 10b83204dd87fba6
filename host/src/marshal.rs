//! The model (`runretry-kit`) to the types wasmtime generates from the WIT, and back. The two
//! mirror each other record for record, so this is naming, not logic.

use runretry_kit::{
    Action, BackfillStatus, CheckSeverity, Config, Decision, Failure, FailureReason, LaunchOrigin, Run, RunStatus,
    Selection, StepStatus, Strategy,
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

fn pairs(tags: &[(String, String)]) -> Vec<(&str, &str)> {
    tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn strs(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

/// Call `call` with the run as the guest sees it. The generated parameter types borrow every
/// string from `run` (no copy of the case before the canonical ABI copies it into the guest);
/// only the lists of borrowed values are built here, and live for the call.
pub(crate) fn with_run<R>(run: &Run, call: impl FnOnce(wit::Run<'_>) -> R) -> R {
    let tags = pairs(&run.tags);
    let job_tags = pairs(&run.job_tags);
    let member_tags: Vec<Vec<(&str, &str)>> = run.group.iter().map(|m| pairs(&m.tags)).collect();
    let group: Vec<wit::GroupMember<'_>> = run
        .group
        .iter()
        .zip(&member_tags)
        .map(|(m, tags)| wit::GroupMember {
            run_id: &m.run_id,
            parent_run_id: m.parent_run_id.as_deref(),
            tags,
            status: m.status.map(run_status),
            exists: m.exists,
        })
        .collect();
    let upstreams: Vec<Vec<&str>> = run.steps.iter().map(|s| strs(&s.upstream)).collect();
    let mapping_keys: Vec<Vec<&str>> = run.steps.iter().map(|s| strs(&s.mapping_keys)).collect();
    let assets: Vec<Vec<&str>> = run.steps.iter().map(|s| strs(&s.assets)).collect();
    let checks: Vec<Vec<&str>> = run.steps.iter().map(|s| strs(&s.checks)).collect();
    let required_keys: Vec<Vec<&str>> = run.steps.iter().map(|s| strs(&s.required_keys)).collect();
    let blocking_checks: Vec<Vec<&str>> = run.steps.iter().map(|s| strs(&s.blocking_checks)).collect();
    let instances: Vec<Vec<wit::MappedInstance<'_>>> = run
        .steps
        .iter()
        .map(|s| {
            s.instances
                .iter()
                .map(|i| wit::MappedInstance { mapping_key: &i.mapping_key, status: step_status(i.status) })
                .collect()
        })
        .collect();
    let steps: Vec<wit::Step<'_>> = run
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| wit::Step {
            key: &s.key,
            upstream: &upstreams[i],
            status: step_status(s.status),
            instances: &instances[i],
            dynamic_output: s.dynamic_output,
            mapping_keys: &mapping_keys[i],
            assets: &assets[i],
            checks: &checks[i],
            required_keys: &required_keys[i],
            blocking_checks: &blocking_checks[i],
            can_subset: s.can_subset,
        })
        .collect();
    let step_keys_to_execute = run.step_keys_to_execute.as_deref().map(strs);
    let op_selection = run.op_selection.as_deref().map(strs);
    let asset_selection = run.asset_selection.as_deref().map(strs);
    let asset_check_selection = run.asset_check_selection.as_deref().map(strs);
    let materialized_assets = strs(&run.materialized_assets);
    let check_evaluations: Vec<wit::CheckEvaluation<'_>> = run
        .check_evaluations
        .iter()
        .map(|e| wit::CheckEvaluation {
            check: &e.check,
            passed: e.passed,
            blocking: e.blocking,
            severity: e.severity.map(|s| match s {
                CheckSeverity::Error => wit::CheckSeverity::Error,
                CheckSeverity::Warn => wit::CheckSeverity::Warn,
            }),
        })
        .collect();
    let history: Vec<wit::HistoryRun<'_>> = run
        .history
        .iter()
        .map(|h| wit::HistoryRun {
            run_id: &h.run_id,
            status: run_status(h.status),
            root_run_id: h.root_run_id.as_deref(),
            retry_number: h.retry_number,
            launched_by: match h.launched_by {
                LaunchOrigin::Schedule => wit::LaunchOrigin::Schedule,
                LaunchOrigin::Sensor => wit::LaunchOrigin::Sensor,
                LaunchOrigin::Backfill => wit::LaunchOrigin::Backfill,
                LaunchOrigin::Manual => wit::LaunchOrigin::Manual,
            },
            start_time: h.start_time,
            end_time: h.end_time,
            failure_reason: h.failure_reason.as_ref().map(failure_reason),
            failure_message: h.failure_message.as_deref(),
        })
        .collect();
    call(wit::Run {
        run_id: &run.run_id,
        status: run_status(run.status),
        tags: &tags,
        root_run_id: run.root_run_id.as_deref(),
        parent_run_id: run.parent_run_id.as_deref(),
        group: &group,
        steps: &steps,
        step_keys_to_execute: step_keys_to_execute.as_deref(),
        op_selection: op_selection.as_deref(),
        job_tags: &job_tags,
        backfill: run.backfill.as_ref().map(|b| wit::Backfill {
            id: &b.id,
            exists: b.exists,
            status: backfill_status(b.status),
        }),
        job: run.job.as_deref(),
        asset_selection: asset_selection.as_deref(),
        asset_check_selection: asset_check_selection.as_deref(),
        materialized_assets: &materialized_assets,
        check_evaluations: &check_evaluations,
        history: &history,
    })
}

/// The failure; a reason the contract does not know travels as `other`.
pub(crate) fn failure_to_wit(failure: &Failure) -> wit::Failure<'_> {
    wit::Failure {
        reason: failure.reason.as_ref().map(failure_reason),
        message: failure.message.as_deref(),
        now: failure.now,
    }
}

fn failure_reason(r: &FailureReason) -> wit::FailureReason<'_> {
    match r {
        FailureReason::StepFailure => wit::FailureReason::StepFailure,
        FailureReason::RunException => wit::FailureReason::RunException,
        FailureReason::UnexpectedTermination => wit::FailureReason::UnexpectedTermination,
        FailureReason::JobInitializationFailure => wit::FailureReason::JobInitializationFailure,
        FailureReason::StartTimeout => wit::FailureReason::StartTimeout,
        FailureReason::RunWorkerRestart => wit::FailureReason::RunWorkerRestart,
        FailureReason::Unknown => wit::FailureReason::Unknown,
        FailureReason::Other(text) => wit::FailureReason::Other(text),
    }
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
        asset_selection: d.asset_selection,
        asset_check_selection: d.asset_check_selection,
    }
}

/// The guest's selection, moved into the model as it is: not yet checked.
pub(crate) fn selection_from_wit(s: wit::Selection) -> Selection {
    Selection { steps: s.steps, asset_selection: s.asset_selection, asset_check_selection: s.asset_check_selection }
}

/// Bytes of text in a run (every string of it, found by walking the model): what the input
/// cap is measured against.
pub(crate) fn input_size(run: &Run) -> usize {
    runretry_kit::text_bytes(run)
}
