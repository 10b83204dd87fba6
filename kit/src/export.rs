//! The guest side of the contract (wasm32 only): the bindings wit-bindgen generates from
//! `wit/`, and the moves between them and the model that [`export_policy!`](crate::export_policy)
//! uses. Fields move, nothing is cloned: the model mirrors the WIT record for record.

use crate::model::{
    Action, Backfill, BackfillStatus, CheckEvaluation, CheckSeverity, Config, Decision, Failure, FailureReason,
    GroupMember, HistoryRun, LaunchOrigin, MappedInstance, Run, RunStatus, Selection, Step, StepStatus, Strategy,
};

#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "retry-policy",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "runretry_kit::__private::bindings",
    });
}

use bindings::runretry::policy::types as wit;

fn run_status(s: wit::RunStatus) -> RunStatus {
    match s {
        wit::RunStatus::Queued => RunStatus::Queued,
        wit::RunStatus::NotStarted => RunStatus::NotStarted,
        wit::RunStatus::Managed => RunStatus::Managed,
        wit::RunStatus::Starting => RunStatus::Starting,
        wit::RunStatus::Started => RunStatus::Started,
        wit::RunStatus::Success => RunStatus::Success,
        wit::RunStatus::Failure => RunStatus::Failure,
        wit::RunStatus::Canceling => RunStatus::Canceling,
        wit::RunStatus::Canceled => RunStatus::Canceled,
    }
}

fn step_status(s: wit::StepStatus) -> StepStatus {
    match s {
        wit::StepStatus::Success => StepStatus::Success,
        wit::StepStatus::Failure => StepStatus::Failure,
        wit::StepStatus::Skipped => StepStatus::Skipped,
        wit::StepStatus::InProgress => StepStatus::InProgress,
        wit::StepStatus::NotStarted => StepStatus::NotStarted,
        wit::StepStatus::ResourceInitFailure => StepStatus::ResourceInitFailure,
        wit::StepStatus::Mapped => StepStatus::Mapped,
    }
}

fn backfill_status(s: wit::BackfillStatus) -> BackfillStatus {
    match s {
        wit::BackfillStatus::Requested => BackfillStatus::Requested,
        wit::BackfillStatus::Canceling => BackfillStatus::Canceling,
        wit::BackfillStatus::Failing => BackfillStatus::Failing,
        wit::BackfillStatus::Completed => BackfillStatus::Completed,
        wit::BackfillStatus::Failed => BackfillStatus::Failed,
        wit::BackfillStatus::Canceled => BackfillStatus::Canceled,
        wit::BackfillStatus::CompletedSuccess => BackfillStatus::CompletedSuccess,
        wit::BackfillStatus::CompletedFailed => BackfillStatus::CompletedFailed,
    }
}

/// The run, moved into the model.
pub fn run_from_wit(run: wit::Run) -> Run {
    Run {
        run_id: run.run_id,
        status: run_status(run.status),
        tags: run.tags,
        root_run_id: run.root_run_id,
        parent_run_id: run.parent_run_id,
        group: run
            .group
            .into_iter()
            .map(|m| GroupMember {
                run_id: m.run_id,
                parent_run_id: m.parent_run_id,
                tags: m.tags,
                status: m.status.map(run_status),
                exists: m.exists,
            })
            .collect(),
        steps: run
            .steps
            .into_iter()
            .map(|s| Step {
                key: s.key,
                upstream: s.upstream,
                status: step_status(s.status),
                instances: s
                    .instances
                    .into_iter()
                    .map(|i| MappedInstance { mapping_key: i.mapping_key, status: step_status(i.status) })
                    .collect(),
                dynamic_output: s.dynamic_output,
                mapping_keys: s.mapping_keys,
                assets: s.assets,
                checks: s.checks,
                required_keys: s.required_keys,
                blocking_checks: s.blocking_checks,
                can_subset: s.can_subset,
            })
            .collect(),
        step_keys_to_execute: run.step_keys_to_execute,
        op_selection: run.op_selection,
        job_tags: run.job_tags,
        backfill: run.backfill.map(|b| Backfill { id: b.id, exists: b.exists, status: backfill_status(b.status) }),
        job: run.job,
        asset_selection: run.asset_selection,
        asset_check_selection: run.asset_check_selection,
        materialized_assets: run.materialized_assets,
        check_evaluations: run
            .check_evaluations
            .into_iter()
            .map(|e| CheckEvaluation {
                check: e.check,
                passed: e.passed,
                blocking: e.blocking,
                severity: e.severity.map(|s| match s {
                    wit::CheckSeverity::Error => CheckSeverity::Error,
                    wit::CheckSeverity::Warn => CheckSeverity::Warn,
                }),
            })
            .collect(),
        history: run
            .history
            .into_iter()
            .map(|h| HistoryRun {
                run_id: h.run_id,
                status: run_status(h.status),
                root_run_id: h.root_run_id,
                retry_number: h.retry_number,
                launched_by: match h.launched_by {
                    wit::LaunchOrigin::Schedule => LaunchOrigin::Schedule,
                    wit::LaunchOrigin::Sensor => LaunchOrigin::Sensor,
                    wit::LaunchOrigin::Backfill => LaunchOrigin::Backfill,
                    wit::LaunchOrigin::Manual => LaunchOrigin::Manual,
                },
                start_time: h.start_time,
                end_time: h.end_time,
                failure_reason: h.failure_reason.map(failure_reason),
                failure_message: h.failure_message,
            })
            .collect(),
    }
}

fn failure_reason(r: wit::FailureReason) -> FailureReason {
    match r {
        wit::FailureReason::StepFailure => FailureReason::StepFailure,
        wit::FailureReason::RunException => FailureReason::RunException,
        wit::FailureReason::UnexpectedTermination => FailureReason::UnexpectedTermination,
        wit::FailureReason::JobInitializationFailure => FailureReason::JobInitializationFailure,
        wit::FailureReason::StartTimeout => FailureReason::StartTimeout,
        wit::FailureReason::RunWorkerRestart => FailureReason::RunWorkerRestart,
        wit::FailureReason::Unknown => FailureReason::Unknown,
        wit::FailureReason::Other(text) => FailureReason::Other(text),
    }
}

/// The failure, moved into the model.
pub fn failure_from_wit(failure: wit::Failure) -> Failure {
    Failure { reason: failure.reason.map(failure_reason), message: failure.message, now: failure.now }
}

/// The config, into the model.
pub fn config_from_wit(config: wit::Config) -> Config {
    Config {
        enabled: config.enabled,
        max_retries: config.max_retries,
        retry_on_asset_or_op_failure: config.retry_on_asset_or_op_failure,
    }
}

/// The strategy, into the model.
pub fn strategy_from_wit(strategy: wit::RetryStrategy) -> Strategy {
    match strategy {
        wit::RetryStrategy::AllSteps => Strategy::AllSteps,
        wit::RetryStrategy::FromFailure => Strategy::FromFailure,
        wit::RetryStrategy::FromAssetFailure => Strategy::FromAssetFailure,
    }
}

/// The decision, moved into the WIT record.
pub fn decision_to_wit(d: Decision) -> wit::Decision {
    wit::Decision {
        action: match d.action {
            Action::LaunchNew => wit::Action::LaunchNew,
            Action::ResubmitExisting => wit::Action::ResubmitExisting,
            Action::None => wit::Action::None,
        },
        retry_number: d.retry_number,
        strategy: d.strategy.map(|s| match s {
            Strategy::AllSteps => wit::RetryStrategy::AllSteps,
            Strategy::FromFailure => wit::RetryStrategy::FromFailure,
            Strategy::FromAssetFailure => wit::RetryStrategy::FromAssetFailure,
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

/// The selection, moved into the WIT record.
pub fn selection_to_wit(s: Selection) -> wit::Selection {
    wit::Selection {
        steps: s.steps,
        asset_selection: s.asset_selection,
        asset_check_selection: s.asset_check_selection,
    }
}

/// Export a type implementing [`Policy`](crate::Policy) as this component's `policy` interface
/// (wasm32 only: on other targets the policy is a plain Rust type, to test natively).
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        struct __RunretryExport;
        impl $crate::__private::bindings::exports::runretry::policy::policy::Guest for __RunretryExport {
            fn should_retry(
                run: $crate::__private::bindings::runretry::policy::types::Run,
                failure: $crate::__private::bindings::runretry::policy::types::Failure,
                config: $crate::__private::bindings::runretry::policy::types::Config,
            ) -> $crate::__private::bindings::runretry::policy::types::Decision {
                let decision = <$policy as $crate::Policy>::should_retry(
                    &$crate::__private::run_from_wit(run),
                    &$crate::__private::failure_from_wit(failure),
                    &$crate::__private::config_from_wit(config),
                );
                $crate::__private::decision_to_wit(decision)
            }
            fn select_steps(
                run: $crate::__private::bindings::runretry::policy::types::Run,
                strategy: $crate::__private::bindings::runretry::policy::types::RetryStrategy,
            ) -> Result<$crate::__private::bindings::runretry::policy::types::Selection, String> {
                <$policy as $crate::Policy>::select_steps(
                    &$crate::__private::run_from_wit(run),
                    $crate::__private::strategy_from_wit(strategy),
                )
                .map($crate::__private::selection_to_wit)
            }
        }
        $crate::__private::bindings::export!(__RunretryExport with_types_in $crate::__private::bindings);
    };
}
