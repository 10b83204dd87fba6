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
//! the case ([`WALL_CLOCK_EPOCH_SECS`]); every answer is checked against the contract before it
//! is returned. Errors are typed ([`Error`]). The case and decision types are the contract's one
//! model, from the `runretry-kit` crate, re-exported here.

#![deny(missing_docs)]
//!
//! The root holds the core: [`Sandbox`] and its limits ([`SandboxConfig`], [`LimitOverrides`]),
//! a loaded [`Policy`] and a [`Deployment`] (a policy and what to do when it fails), [`Error`],
//! and the contract's model. The tools over it are modules: [`conformance`] (suites any policy
//! can be run against), [`replay`] (a candidate against recorded decisions), [`batch`] (JSON
//! Lines on several threads), [`inspect`] (what a component is), [`dagster_yaml`] (a
//! deployment's `run_retries` block), [`decision_record`] (the service's log), [`cache`] (the
//! compile cache) and [`limits`] (the caps on a policy's answer). The HTTP service is the
//! `runretry-serve` crate; the command line, `runretry-cli`.

mod answer_budget;
pub mod batch;
pub mod cache;
mod component;
pub mod conformance;
mod dagster;
pub mod dagster_yaml;
pub mod decision_record;
mod determinism;
mod error;
mod exports;
mod fallback;
pub mod inspect;
mod policy;
pub mod replay;
mod sandbox;
mod validate;

pub use runretry_kit::{
    Action, Backfill, BackfillStatus, Case, CaseError, CheckEvaluation, CheckSeverity, Config, Decision, Failure,
    FailureReason, GroupMember, HistoryRun, LaunchOrigin, MappedInstance, Run, RunStatus, Selection, SelectionAnswer,
    Step, StepKey, StepStatus, Strategy, Tags,
};

pub use component::CONTRACT_VERSION;
pub use determinism::WALL_CLOCK_EPOCH_SECS;
pub use error::{clip_to, clip_untrusted, escape_untrusted, Cause, Error, MAX_GUEST_TEXT_BYTES};
pub use fallback::{Decided, Deployment, OnFailure, OnPolicyError};
pub use policy::{Policy, Sandbox, WarmPolicy, DEFAULT_POLICY_NAME, DEFAULT_POLICY_WASM};
pub use sandbox::{default_cache_dir, Interrupt, LimitOverrides, SandboxConfig, StopReason};

/// What the host refuses in a policy's answer, and the rules it checks it by.
pub mod limits {
    pub use crate::component::{ALLOWED_IMPORT_PREFIXES, POLICY_EXPORT};
    pub use crate::dagster::is_compliant_tag_key;
    pub use crate::determinism::{seed_for, MAX_RANDOM_BYTES};
    pub use crate::validate::{MAX_DECISION_TEXT_BYTES, MAX_EVENTS, MAX_TAGS, MAX_TAG_KEY_BYTES, MAX_TAG_VALUE_BYTES};
}
