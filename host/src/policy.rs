//! A loaded policy: one fresh sandboxed instance per decision, typed input in, checked output out.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime::Engine;

use crate::bindings::RetryPolicyPre;
use crate::case::{Case, Run};
use crate::component;
use crate::decision::{Decision, Selection, Strategy};
use crate::error::Error;
use crate::marshal;
use crate::sandbox::{self, HostState, SandboxConfig};
use crate::validate::{self, PlanKeys};

/// The default policy (Dagster's semantics), built from `guest-default-policy` by build.rs.
pub static DEFAULT_POLICY_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/default_policy.wasm"));

/// An engine, a linker and limits: loads policies that then share them.
#[derive(Clone)]
pub struct Sandbox {
    engine: Engine,
    linker: Linker<HostState>,
    config: Arc<SandboxConfig>,
}

impl Sandbox {
    /// Build the engine and the WASI linker for `config`.
    pub fn new(config: SandboxConfig) -> Result<Self, Error> {
        let engine = sandbox::build_engine(&config)?;
        let linker = component::policy_linker(&engine)?;
        Ok(Sandbox { engine, linker, config: Arc::new(config) })
    }

    /// The limits in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The wasmtime engine (for inspection and tooling).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Load a policy component from a file.
    pub fn load_file(&self, path: &Path) -> Result<Policy, Error> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::bad_input(format!("{}: cannot read policy: {e}", path.display())))?;
        self.load_bytes(&path.display().to_string(), &bytes)
    }

    /// Load a policy component from bytes; `name` identifies it in errors.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Policy, Error> {
        let compiled = component::compile(&self.engine, name, bytes)?;
        let pre = component::prepare(&self.engine, &self.linker, name, &compiled)?;
        Ok(Policy { sandbox: self.clone(), pre, name: name.to_string() })
    }

    /// Load the embedded default policy.
    pub fn load_default(&self) -> Result<Policy, Error> {
        self.load_bytes("<embedded default policy>", DEFAULT_POLICY_WASM)
    }
}

/// A policy component ready to decide. Cheap to share across threads (`Clone`, `Send`, `Sync`).
#[derive(Clone)]
pub struct Policy {
    sandbox: Sandbox,
    pre: RetryPolicyPre<HostState>,
    name: String,
}

impl Policy {
    /// The name given at load time (a path, or `<embedded default policy>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The complete decision for a case, from a fresh instance (a trap poisons a store, and one
    /// decision must never see another's state).
    pub fn decide(&self, case: &Case) -> Result<Decision, Error> {
        self.check_input_size(&case.run)?;
        let run = marshal::run_to_wit(&case.run);
        let failure = marshal::failure_to_wit(&case.failure);
        let config = marshal::config_to_wit(&case.config);
        let wit_decision = self.call(|store, policy| {
            policy.runretry_policy_policy().call_should_retry(store, &run, &failure, config)
        })?;
        let tag_pairs = (wit_decision.new_run_tags.len(), wit_decision.failed_run_tags.len());
        let decision = marshal::decision_from_wit(wit_decision);
        if validate::decision_size(&decision) > self.sandbox.config.max_output_bytes {
            return Err(Error::invalid_output(format!(
                "the decision is larger than the {} byte output cap",
                self.sandbox.config.max_output_bytes
            )));
        }
        validate::check_decision(&case.run, decision, tag_pairs)
    }

    /// The steps a re-execution with `strategy` runs, or the policy's refusal.
    pub fn select_steps(&self, run: &Run, strategy: Strategy) -> Result<Selection, Error> {
        self.check_input_size(run)?;
        let wit_run = marshal::run_to_wit(run);
        let wit_strategy = marshal::strategy_to_wit(strategy);
        let answer = self.call(|store, policy| {
            policy.runretry_policy_policy().call_select_steps(store, &wit_run, wit_strategy)
        })?;
        match answer {
            Ok(steps) => {
                let size: usize = steps.iter().map(String::len).sum();
                if size > self.sandbox.config.max_output_bytes {
                    return Err(Error::invalid_output("the selection is larger than the output cap"));
                }
                let steps = PlanKeys::new(run).check_steps("steps", steps)?;
                Ok(Selection::Steps { strategy, steps })
            }
            Err(error) => Ok(Selection::Refused { strategy, error }),
        }
    }

    /// Instantiate in a fresh store and make one call, classifying any failure.
    fn call<R>(
        &self,
        f: impl FnOnce(&mut wasmtime::Store<HostState>, &crate::bindings::RetryPolicy) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let config = &self.sandbox.config;
        let mut store = sandbox::new_store(&self.sandbox.engine, config);
        let result = self.pre.instantiate(&mut store).and_then(|policy| f(&mut store, &policy));
        result.map_err(|e| sandbox::classify(e, &store, config))
    }

    fn check_input_size(&self, run: &Run) -> Result<(), Error> {
        let size = marshal::input_size(run);
        let cap = self.sandbox.config.max_input_bytes;
        if size > cap {
            return Err(Error::bad_input(format!("the run is {size} bytes of text, over the {cap} byte input cap")));
        }
        Ok(())
    }
}
