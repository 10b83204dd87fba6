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

mod batch;
mod bindings;
mod cache;
mod component;
mod conformance;
mod dagster;
mod dagster_yaml;
pub mod decision_record;
mod determinism;
mod error;
mod fallback;
mod inspect;
mod marshal;
mod policy;
mod replay;
mod sandbox;
#[cfg(feature = "serve")]
mod serve;
mod validate;

pub use runretry_kit::{
    Action, Backfill, BackfillStatus, Case, CaseError, CheckEvaluation, CheckSeverity, Config, Decision, Failure,
    FailureReason, GroupMember, MappedInstance, Run, RunStatus, Selection, SelectionAnswer, Step, StepKey, StepStatus,
    Strategy, Tags,
};

pub use batch::{decide_batch, BatchAnswer};
pub use cache::{CacheRefusal, CompileCache};
pub use component::{WasmKind, ALLOWED_IMPORT_PREFIXES, CONTRACT_VERSION, POLICY_EXPORT};
pub use conformance::{
    contract_cases, default_cases, load_cases, run_cases, run_suite, CaseFailure, ConformanceCase, Kind, Report,
    SuiteChoice, DEFAULT_SUITE,
};
pub use dagster::is_compliant_tag_key;
pub use dagster_yaml::{parse_run_retries, read_run_retries};
pub use determinism::{seed_for, MAX_RANDOM_BYTES, WALL_CLOCK_EPOCH_SECS};
pub use error::{escape_untrusted, Cause, Error};
pub use fallback::{Deployment, OnPolicyError};
pub use inspect::{inspect, Inspection};
pub use policy::{Policy, Sandbox, WarmPolicy, DEFAULT_POLICY_WASM};
pub use replay::{
    compare_answers, read_replay_input, render_replay, replay, Baseline, ChangeKind, Difference, JobReport, KindCount,
    ReplayEntry, ReplayFormat, ReplayReport, CHANGE_KINDS,
};
pub use sandbox::{default_cache_dir, LimitOverrides, SandboxConfig};
#[cfg(feature = "serve")]
pub use serve::{repair_torn_tail, sha256_hex, DecisionLogConfig, Origin, Rejection, ServeConfig, Server, VersionInfo};
pub use validate::{MAX_EVENTS, MAX_TAGS, MAX_TAG_KEY_BYTES, MAX_TAG_VALUE_BYTES};
