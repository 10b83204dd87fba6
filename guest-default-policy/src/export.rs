//! The thin layer between the WIT contract and the plain library: generated bindings,
//! conversions, and [`export_policy!`](crate::export_policy) to export any [`Policy`].

use crate::model::{self, Action, Decision, RunStatus, StepStatus, Strategy};

#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "retry-policy",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "runretry_default_policy::bindings",
    });
}

use bindings::runretry::policy::types as wit;

/// A policy written against the plain model types, exportable with `export_policy!`.
pub trait Policy {
    /// The complete decision for a failed run.
    fn should_retry(run: &model::Run, failure: &model::Failure, config: &model::Config) -> Decision;
    /// The steps a re-execution runs, or why it cannot.
    fn select_steps(run: &model::Run, strategy: Strategy) -> Result<Vec<String>, String>;
}

/// Export a type implementing [`Policy`] as this component's `policy` interface.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        struct __RunretryExport;
        impl $crate::bindings::exports::runretry::policy::policy::Guest for __RunretryExport {
            fn should_retry(
                run: $crate::bindings::runretry::policy::types::Run,
                failure: $crate::bindings::runretry::policy::types::Failure,
                config: $crate::bindings::runretry::policy::types::Config,
            ) -> $crate::bindings::runretry::policy::types::Decision {
                let decision = <$policy as $crate::Policy>::should_retry(
                    &$crate::run_from_wit(run),
                    &$crate::failure_from_wit(failure),
                    &$crate::config_from_wit(config),
                );
                $crate::decision_to_wit(decision)
            }
            fn select_steps(
                run: $crate::bindings::runretry::policy::types::Run,
                strategy: $crate::bindings::runretry::policy::types::RetryStrategy,
            ) -> Result<Vec<String>, String> {
                <$policy as $crate::Policy>::select_steps(
                    &$crate::run_from_wit(run),
                    $crate::strategy_from_wit(strategy),
                )
            }
        }
        $crate::bindings::export!(__RunretryExport with_types_in $crate::bindings);
    };
}

/// Dagster's semantics, unchanged: the default policy.
pub struct DefaultPolicy;

impl Policy for DefaultPolicy {
    fn should_retry(run: &model::Run, failure: &model::Failure, config: &model::Config) -> Decision {
        crate::should_retry(run, failure, config)
    }
    fn select_steps(run: &model::Run, strategy: Strategy) -> Result<Vec<String>, String> {
        crate::select_steps(run, strategy)
    }
}

#[cfg(feature = "component")]
export_policy!(DefaultPolicy);

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

fn backfill_status(s: wit::BackfillStatus) -> model::BackfillStatus {
    use model::BackfillStatus as B;
    match s {
        wit::BackfillStatus::Requested => B::Requested,
        wit::BackfillStatus::Canceling => B::Canceling,
        wit::BackfillStatus::Failing => B::Failing,
        wit::BackfillStatus::Completed => B::Completed,
        wit::BackfillStatus::Failed => B::Failed,
        wit::BackfillStatus::Canceled => B::Canceled,
        wit::BackfillStatus::CompletedSuccess => B::CompletedSuccess,
        wit::BackfillStatus::CompletedFailed => B::CompletedFailed,
    }
}

/// Convert the WIT run into the model.
pub fn run_from_wit(run: wit::Run) -> model::Run {
    model::Run {
        run_id: run.run_id,
        status: run_status(run.status),
        tags: run.tags,
        root_run_id: run.root_run_id,
        parent_run_id: run.parent_run_id,
        group: run
            .group
            .into_iter()
            .map(|m| model::GroupMember {
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
            .map(|s| model::Step {
                key: s.key,
                upstream: s.upstream,
                status: step_status(s.status),
                instances: s
                    .instances
                    .into_iter()
                    .map(|i| (i.mapping_key, step_status(i.status)))
                    .collect(),
            })
            .collect(),
        step_keys_to_execute: run.step_keys_to_execute,
        job_tags: run.job_tags,
        backfill: run.backfill.map(|b| model::Backfill {
            id: b.id,
            exists: b.exists,
            status: backfill_status(b.status),
        }),
    }
}

/// Convert the WIT failure into the model.
pub fn failure_from_wit(failure: wit::Failure) -> model::Failure {
    use model::FailureReason as R;
    let reason = failure.reason.map(|r| match r {
        wit::FailureReason::StepFailure => R::StepFailure,
        wit::FailureReason::RunException => R::RunException,
        wit::FailureReason::UnexpectedTermination => R::UnexpectedTermination,
        wit::FailureReason::JobInitializationFailure => R::JobInitializationFailure,
        wit::FailureReason::StartTimeout => R::StartTimeout,
        wit::FailureReason::RunWorkerRestart => R::RunWorkerRestart,
        wit::FailureReason::Unknown => R::Unknown,
        wit::FailureReason::Other(s) => R::Other(s),
    });
    model::Failure { reason, message: failure.message }
}

/// Convert the WIT config into the model.
pub fn config_from_wit(config: wit::Config) -> model::Config {
    model::Config {
        enabled: config.enabled,
        max_retries: config.max_retries,
        retry_on_asset_or_op_failure: config.retry_on_asset_or_op_failure,
    }
}

/// Convert the WIT strategy into the model.
pub fn strategy_from_wit(strategy: wit::RetryStrategy) -> Strategy {
    match strategy {
        wit::RetryStrategy::AllSteps => Strategy::AllSteps,
        wit::RetryStrategy::FromFailure => Strategy::FromFailure,
        wit::RetryStrategy::FromAssetFailure => Strategy::FromAssetFailure,
    }
}

fn strategy_to_wit(strategy: Strategy) -> wit::RetryStrategy {
    match strategy {
        Strategy::AllSteps => wit::RetryStrategy::AllSteps,
        Strategy::FromFailure => wit::RetryStrategy::FromFailure,
        Strategy::FromAssetFailure => wit::RetryStrategy::FromAssetFailure,
    }
}

/// Convert a model decision into the WIT decision.
pub fn decision_to_wit(d: Decision) -> wit::Decision {
    wit::Decision {
        action: match d.action {
            Action::LaunchNew => wit::Action::LaunchNew,
            Action::ResubmitExisting => wit::Action::ResubmitExisting,
            Action::None => wit::Action::None,
        },
        retry_number: d.retry_number,
        strategy: d.strategy.map(strategy_to_wit),
        steps: d.steps,
        new_run_tags: d.new_run_tags,
        failed_run_tags: d.failed_run_tags,
        resubmit_run_id: d.resubmit_run_id,
        delay_seconds: d.delay_seconds,
        events: d.events,
        reason: d.reason,
    }
}
