//! runretry: pluggable run-retry policies for workflow orchestrators, as sandboxed WebAssembly
//! components.
//!
//! ```no_run
//! use runretry::{Case, Sandbox, SandboxConfig};
//!
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let policy = sandbox.load_default()?; // or sandbox.load_file("my-policy.wasm".as_ref())?
//! let case = Case::from_json("case.json", &std::fs::read_to_string("case.json").unwrap())?;
//! let decision = policy.decide(&case)?;
//! println!("{:?} {:?}", decision.action, decision.steps);
//! # Ok::<(), runretry::Error>(())
//! ```
//!
//! Every call runs in a fresh instance with WASI granting nothing, under fuel, deadline, memory,
//! table and stack limits ([`SandboxConfig`]); every answer is checked against the contract
//! before it is returned. Errors are typed ([`Error`]).

#![warn(missing_docs)]

mod bindings;
pub mod cache;
pub mod case;
pub mod component;
pub mod dagster_yaml;
pub mod decision;
pub mod determinism;
pub mod error;
pub mod fallback;
pub mod inspect;
pub mod conformance;
mod marshal;
pub mod policy;
pub mod sandbox;
pub mod validate;

pub use case::Case;
pub use decision::{Action, Decision, Selection, Strategy};
pub use error::Error;
pub use policy::{Policy, Sandbox, WarmPolicy, DEFAULT_POLICY_WASM};
pub use sandbox::SandboxConfig;
