//! runretry's contract as plain Rust: one model of `wit/policy.wit` for everyone.
//!
//! - Policy authors implement [`Policy`] over the model types, unit-test it natively with
//!   `cargo test`, and export it from a `wasm32-wasip2` component with [`export_policy!`].
//! - The host, the default policy, the examples and the test guests all use these types: a
//!   field added to the WIT is added here, once. Nothing converts them: in a guest wit-bindgen
//!   lifts and lowers the model itself, and with the `wasmtime` feature so does the host (a
//!   model out of step with the WIT fails to compile in the guest, and to load in the host).
//! - With the `serde` feature the model reads and writes the JSON case format
//!   (`docs/case-format.md`): [`Case::from_json`], and `serde` for every type.
//! - A guest also exports the WIT's `packed` interface: the case in one buffer, decoded here
//!   into the same model (the `packed` module), which the host calls instead of the typed one.
//! - [`number_tag`] and [`duration_words`] are the small readers the examples share.
//!
//! ```
//! use runretry_kit::{Action, RunRetries, Decision, Failure, Policy, Run, RunStatus, Selection, Strategy};
//!
//! /// Never retries: the smallest policy there is.
//! struct Never;
//!
//! impl Policy for Never {
//!     fn should_retry(_run: &Run, _failure: &Failure, _config: &RunRetries) -> Decision {
//!         Decision::none("this deployment never retries")
//!     }
//!     fn select_steps(_run: &Run, _strategy: Strategy) -> Result<Selection, String> {
//!         Err("this deployment never retries".into())
//!     }
//! }
//!
//! runretry_kit::export_policy!(Never); // a component export on wasm32, nothing natively
//!
//! let run = Run::new("run-A", RunStatus::Failure);
//! assert_eq!(Never::should_retry(&run, &Failure::default(), &RunRetries::default()).action, Action::None);
//! ```

#![deny(missing_docs)]

#[macro_use]
mod model;
mod policy;
mod reading;
mod step_key;
mod task;

#[cfg(feature = "serde")]
pub mod conformance;
#[cfg(feature = "serde")]
mod expect;
// A guest built without the `serde` feature uses only the derives' helpers, not the JSON reader.
#[cfg(model_serde)]
#[cfg_attr(not(feature = "serde"), allow(dead_code))]
mod json;
#[cfg(model_serde)]
pub mod packed;
#[cfg(feature = "serde")]
mod text_size;

#[cfg(target_arch = "wasm32")]
mod export;

#[allow(deprecated)]
pub use model::Config;
pub use model::{
    set_tag, tag, Action, Backfill, BackfillStatus, CheckEvaluation, CheckSeverity, DagsterVersion, Decision, Failure,
    FailureReason, GroupMember, HistoryRun, LaunchOrigin, MappedInstance, Run, RunRetries, RunStatus, Selection,
    SelectionAnswer, Step, StepStatus, Strategy, TagMerge, Tags, UnknownSpelling,
};
pub use policy::{Policy, TaskPolicy};
pub use reading::{duration_words, number_tag};
pub use step_key::StepKey;
pub use task::{
    DagRunType, ExceptionInfo, RetrySettings, TaskAction, TaskCase, TaskDecision, TaskRun, TaskState, TaskTry,
};

#[cfg(feature = "serde")]
pub use expect::{compare_decision, compare_selection, compare_task_decision};
#[cfg(feature = "serde")]
pub use json::{AnyCase, Case, CaseError};
#[cfg(feature = "serde")]
pub use text_size::text_bytes;

/// Not public API: what [`export_policy!`] expands to needs.
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub mod __private {
    pub use crate::export::{runs, tasks};
}

/// Export a [`Policy`] (`export_policy!(P)`), a [`TaskPolicy`] (`export_policy!(task: T)`) or
/// both (`export_policy!(P, task: T)`) from this component. On targets other than wasm32 it
/// expands to nothing, so the same source builds and tests natively.
#[cfg(not(target_arch = "wasm32"))]
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {};
    (task: $task:ty) => {};
    ($policy:ty, task: $task:ty) => {};
}
