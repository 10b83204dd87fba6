//! runretry: pluggable run-retry policies for workflow orchestrators, as sandboxed WebAssembly
//! components.
//!
//! ```no_run
//! use runretry::{Case, Sandbox, SandboxConfig};
//!
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let policy = sandbox.load_default()?; // or sandbox.load_file("my-policy.wasm".as_ref())?
//! let text = std::fs::read_to_string("case.json").unwrap();
//! let case = Case::from_json("case.json", &text)?;
//! let decision = policy.decide(&case)?;
//! println!("{:?} {:?}", decision.action, decision.steps);
//! # Ok::<(), runretry::Error>(())
//! ```
//!
//! Every call runs in a fresh instance with WASI granting nothing, under fuel, deadline, memory,
//! table and stack limits ([`SandboxConfig`]), with clocks and randomness that are a function of
//! the case ([`determinism`]); every answer is checked against the contract before it
//! is returned. Errors are typed ([`Error`]). The case and decision types are the contract's one
//! model, from the `runretry-kit` crate, re-exported here.
//!
//! The root holds the core: [`Sandbox`] and its limits ([`SandboxConfig`], [`LimitOverrides`]),
//! a loaded [`Policy`] and a [`Deployment`] (a policy and what to do when it fails), [`Error`],
//! and the contract's model. The rest are modules, by what they are for:
//!
//! - tools over the core: [`conformance`] (suites any policy can be run against), [`replay`] (a
//!   candidate against recorded decisions), [`batch`] (JSON Lines on several threads),
//!   [`inspect`] (what a component is), [`dagster_yaml`] (a deployment's `run_retries` block),
//!   [`decision_record`] (the service's log);
//! - for a long-running host: [`calls`] (an instance kept warm, calls ended from outside);
//! - trust: [`signing`] (keys, signatures, and the keys a sandbox trusts);
//! - reference: [`rules`] (what the host checks of a component and its answers),
//!   [`determinism`] (what a policy sees of time and chance), [`text`] (how guest text is
//!   bounded before it is shown).
//!
//! The HTTP service is the `runretry-serve` crate; the command line, `runretry-cli`.

#![deny(missing_docs)]

mod answer_budget;
pub mod batch;
mod cache;
mod component;
pub mod conformance;
mod contract;
mod dagster;
pub mod dagster_yaml;
pub mod decision_record;
pub mod determinism;
mod error;
mod exports;
mod fallback;
mod hex;
pub mod inspect;
mod policy;
pub mod replay;
mod sandbox;
pub mod signing;
mod validate;

pub use runretry_kit::{
    Action, AnyCase, Backfill, BackfillStatus, Case, CaseError, CheckEvaluation, CheckSeverity, DagRunType,
    DagsterVersion, Decision, ExceptionInfo, Failure, FailureReason, GroupMember, HistoryRun, LaunchOrigin,
    MappedInstance, RetrySettings, Run, RunRetries, RunStatus, Selection, SelectionAnswer, Step, StepKey, StepStatus,
    Strategy, Tags, TaskAction, TaskCase, TaskDecision, TaskRun, TaskState, TaskTry,
};

pub use contract::CONTRACT_VERSION;
pub use dagster_yaml::ConfigOverride;
pub use error::{Cause, Error};
pub use fallback::{Decided, Deployment, OnFailure, OnPolicyError};
pub use hex::sha256_hex;
pub use policy::{Policy, Sandbox, DEFAULT_POLICY_NAME, DEFAULT_POLICY_WASM};
pub use sandbox::{default_cache_dir, LimitKnob, LimitOverrides, SandboxConfig, LIMIT_KNOBS};

/// For a long-running host (the service): a policy instance reused across calls, and calls
/// ended from outside before their own deadline.
pub mod calls {
    pub use crate::policy::WarmPolicy;
    pub use crate::sandbox::{Interrupt, StopReason};
}

/// What the host checks of a component and of its answers: the export a policy must have and
/// the imports it may have, the caps on an answer, and the rule for tag keys.
pub mod rules {
    pub use crate::contract::{ALLOWED_IMPORT_PREFIXES, PACKED_EXPORT, POLICY_EXPORT, TASK_EXPORT};
    pub use crate::dagster::is_compliant_tag_key;
    pub use crate::validate::{
        MAX_DECISION_TEXT_BYTES, MAX_EVENTS, MAX_TAGS, MAX_TAG_KEY_BYTES, MAX_TAG_VALUE_BYTES, MAX_TASK_DELAY_SECONDS,
    };
}

/// Text from a guest (or a client) is hostile: how it is bounded and escaped before it is shown
/// or logged.
pub mod text {
    pub use crate::error::{clip_to, clip_untrusted, escape_untrusted, MAX_GUEST_TEXT_BYTES};
}
