//! The guest side of the contract (wasm32 only): the bindings wit-bindgen generates from
//! `wit/`, reading and writing the model's own types. Every record, enum and variant of the WIT
//! package is mapped (`with`) to its model type, so the canonical ABI lifts a case straight into
//! a [`Run`](crate::Run) and lowers a [`Decision`](crate::Decision) straight from it: no copy,
//! no conversion, and a model that drifts from the WIT (a field missing, renamed or of another
//! type, a case out of order) does not compile.

// One set of bindings per half of the contract: a guest implements every export of the world it
// is built for, so a run policy must not be built for the task world nor the other way round. A
// guest exporting both invokes both export macros: the component's world is the union of the
// two (one world of both halves would define each interface's export macros twice).

/// A run policy's bindings (`policy` and `packed`).
#[allow(missing_docs)]
pub mod runs {
    wit_bindgen::generate!({
        world: "retry-policy-packed",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "runretry_kit::__private::runs",
        with: {
            "runretry:policy/types@0.4.0/run-status": crate::model::RunStatus,
            "runretry:policy/types@0.4.0/step-status": crate::model::StepStatus,
            "runretry:policy/types@0.4.0/mapped-instance": crate::model::MappedInstance,
            "runretry:policy/types@0.4.0/step": crate::model::Step,
            "runretry:policy/types@0.4.0/check-severity": crate::model::CheckSeverity,
            "runretry:policy/types@0.4.0/check-evaluation": crate::model::CheckEvaluation,
            "runretry:policy/types@0.4.0/group-member": crate::model::GroupMember,
            "runretry:policy/types@0.4.0/backfill-status": crate::model::BackfillStatus,
            "runretry:policy/types@0.4.0/backfill": crate::model::Backfill,
            "runretry:policy/types@0.4.0/launch-origin": crate::model::LaunchOrigin,
            "runretry:policy/types@0.4.0/history-run": crate::model::HistoryRun,
            "runretry:policy/types@0.4.0/run": crate::model::Run,
            "runretry:policy/types@0.4.0/failure-reason": crate::model::FailureReason,
            "runretry:policy/types@0.4.0/failure": crate::model::Failure,
            "runretry:policy/types@0.4.0/dagster-version": crate::model::DagsterVersion,
            "runretry:policy/types@0.4.0/config": crate::model::RunRetries,
            "runretry:policy/types@0.4.0/retry-strategy": crate::model::Strategy,
            "runretry:policy/types@0.4.0/action": crate::model::Action,
            "runretry:policy/types@0.4.0/decision": crate::model::Decision,
            "runretry:policy/types@0.4.0/selection": crate::model::Selection,
        },
    });
}

/// A task policy's bindings (`task-policy`).
#[allow(missing_docs)]
pub mod tasks {
    wit_bindgen::generate!({
        world: "task-retry-policy",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "runretry_kit::__private::tasks",
        with: {
            "runretry:policy/task-types@0.4.0/dag-run-type": crate::task::DagRunType,
            "runretry:policy/task-types@0.4.0/task-state": crate::task::TaskState,
            "runretry:policy/task-types@0.4.0/exception-info": crate::task::ExceptionInfo,
            "runretry:policy/task-types@0.4.0/retry-settings": crate::task::RetrySettings,
            "runretry:policy/task-types@0.4.0/task-try": crate::task::TaskTry,
            "runretry:policy/task-types@0.4.0/task-run": crate::task::TaskRun,
            "runretry:policy/task-types@0.4.0/task-case": crate::task::TaskCase,
            "runretry:policy/task-types@0.4.0/task-action": crate::task::TaskAction,
            "runretry:policy/task-types@0.4.0/task-decision": crate::task::TaskDecision,
        },
    });
}

/// Export policies from this component (wasm32 only: on other targets a policy is a plain Rust
/// type, to test natively):
/// - `export_policy!(P)`: `P: Policy` as the `policy` interface, and as `packed`, the same
///   functions with the case in one buffer, which the host prefers;
/// - `export_policy!(task: T)`: `T: TaskPolicy` as the `task-policy` interface;
/// - `export_policy!(P, task: T)`: both (one type may be both).
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        $crate::__export_runs!(runs, $policy);
        $crate::__private::runs::export!(__RunretryExport with_types_in $crate::__private::runs);
    };
    (task: $task:ty) => {
        $crate::__export_tasks!(tasks, $task);
        $crate::__private::tasks::export!(__RunretryExport with_types_in $crate::__private::tasks);
    };
    ($policy:ty, task: $task:ty) => {
        $crate::__export_runs!(runs, $policy);
        $crate::__export_tasks!(both, $task);
        $crate::__private::runs::export!(__RunretryExport with_types_in $crate::__private::runs);
        $crate::__private::tasks::export!(__RunretryExport with_types_in $crate::__private::tasks);
    };
}

/// Not public API: `export_policy!`'s run half.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_runs {
    ($bindings:ident, $policy:ty) => {
        struct __RunretryExport;
        impl $crate::__private::$bindings::exports::runretry::policy::policy::Guest for __RunretryExport {
            fn should_retry(
                run: $crate::Run,
                failure: $crate::Failure,
                config: $crate::RunRetries,
            ) -> $crate::Decision {
                <$policy as $crate::Policy>::should_retry(&run, &failure, &config)
            }
            fn select_steps(run: $crate::Run, strategy: $crate::Strategy) -> Result<$crate::Selection, String> {
                <$policy as $crate::Policy>::select_steps(&run, strategy)
            }
        }
        impl $crate::__private::$bindings::exports::runretry::policy::packed::Guest for __RunretryExport {
            fn should_retry(case: Vec<u8>) -> Result<Vec<u8>, String> {
                $crate::packed::should_retry::<$policy>(&case)
            }
            fn select_steps(run: Vec<u8>, strategy: $crate::Strategy) -> Result<Vec<u8>, String> {
                $crate::packed::select_steps::<$policy>(&run, strategy)
            }
        }
    };
}

/// Not public API: `export_policy!`'s task half (declares the export type when the run half
/// did not).
#[doc(hidden)]
#[macro_export]
macro_rules! __export_tasks {
    (tasks, $task:ty) => {
        struct __RunretryExport;
        $crate::__export_tasks!(@impl tasks, $task);
    };
    (both, $task:ty) => {
        $crate::__export_tasks!(@impl tasks, $task);
    };
    (@impl $bindings:ident, $task:ty) => {
        impl $crate::__private::$bindings::exports::runretry::policy::task_policy::Guest for __RunretryExport {
            fn decide_task(task: $crate::TaskCase) -> $crate::TaskDecision {
                <$task as $crate::TaskPolicy>::decide_task(&task)
            }
        }
    };
}
