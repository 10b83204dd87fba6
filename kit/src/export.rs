//! The guest side of the contract (wasm32 only): the bindings wit-bindgen generates from
//! `wit/`, reading and writing the model's own types. Every record, enum and variant of the WIT
//! package is mapped (`with`) to its model type, so the canonical ABI lifts a case straight into
//! a [`Run`](crate::Run) and lowers a [`Decision`](crate::Decision) straight from it: no copy,
//! no conversion, and a model that drifts from the WIT (a field missing, renamed or of another
//! type, a case out of order) does not compile.

#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "retry-policy-packed",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "runretry_kit::__private::bindings",
        with: {
            "runretry:policy/types@0.3.0/run-status": crate::model::RunStatus,
            "runretry:policy/types@0.3.0/step-status": crate::model::StepStatus,
            "runretry:policy/types@0.3.0/mapped-instance": crate::model::MappedInstance,
            "runretry:policy/types@0.3.0/step": crate::model::Step,
            "runretry:policy/types@0.3.0/check-severity": crate::model::CheckSeverity,
            "runretry:policy/types@0.3.0/check-evaluation": crate::model::CheckEvaluation,
            "runretry:policy/types@0.3.0/group-member": crate::model::GroupMember,
            "runretry:policy/types@0.3.0/backfill-status": crate::model::BackfillStatus,
            "runretry:policy/types@0.3.0/backfill": crate::model::Backfill,
            "runretry:policy/types@0.3.0/launch-origin": crate::model::LaunchOrigin,
            "runretry:policy/types@0.3.0/history-run": crate::model::HistoryRun,
            "runretry:policy/types@0.3.0/run": crate::model::Run,
            "runretry:policy/types@0.3.0/failure-reason": crate::model::FailureReason,
            "runretry:policy/types@0.3.0/failure": crate::model::Failure,
            "runretry:policy/types@0.3.0/config": crate::model::RunRetries,
            "runretry:policy/types@0.3.0/retry-strategy": crate::model::Strategy,
            "runretry:policy/types@0.3.0/action": crate::model::Action,
            "runretry:policy/types@0.3.0/decision": crate::model::Decision,
            "runretry:policy/types@0.3.0/selection": crate::model::Selection,
        },
    });
}

/// Export a type implementing [`Policy`](crate::Policy) as this component's `policy` interface,
/// and as `packed`, the same functions with the case in one buffer, which the host prefers
/// (wasm32 only: on other targets the policy is a plain Rust type, to test natively).
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        struct __RunretryExport;
        impl $crate::__private::bindings::exports::runretry::policy::policy::Guest for __RunretryExport {
            fn should_retry(run: $crate::Run, failure: $crate::Failure, config: $crate::RunRetries) -> $crate::Decision {
                <$policy as $crate::Policy>::should_retry(&run, &failure, &config)
            }
            fn select_steps(run: $crate::Run, strategy: $crate::Strategy) -> Result<$crate::Selection, String> {
                <$policy as $crate::Policy>::select_steps(&run, strategy)
            }
        }
        impl $crate::__private::bindings::exports::runretry::policy::packed::Guest for __RunretryExport {
            fn should_retry(case: Vec<u8>) -> Result<Vec<u8>, String> {
                $crate::packed::should_retry::<$policy>(&case)
            }
            fn select_steps(run: Vec<u8>, strategy: $crate::Strategy) -> Result<Vec<u8>, String> {
                $crate::packed::select_steps::<$policy>(&run, strategy)
            }
        }
        $crate::__private::bindings::export!(__RunretryExport with_types_in $crate::__private::bindings);
    };
}
