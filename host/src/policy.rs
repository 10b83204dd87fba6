//! A loaded policy: one fresh sandboxed instance per decision, typed input in, checked output out.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime::{Engine, Store};

use crate::exports::{PolicyExports, PolicyPre};
use runretry_kit::{Case, Decision, Run, SelectionAnswer, Strategy, TaskCase, TaskDecision};

use crate::answer_budget::AnswerBudget;
use crate::cache::CompileCache;
use crate::component;
use crate::contract::{POLICY_EXPORT, TASK_EXPORT};
use crate::determinism::seed_for;
use crate::error::{clip_untrusted, Error};
use crate::hex::sha256_hex;
use crate::sandbox::{self, HostState, Interrupt, SandboxConfig};
use crate::signing::{self, TrustedKeys};
use crate::validate;

/// The name the embedded default policy goes by, where a policy's path would be.
pub const DEFAULT_POLICY_NAME: &str = "<embedded default policy>";

/// The default policy (Dagster's semantics for runs, Airflow's for tasks), built from `guest-default-policy` by build.rs.
pub static DEFAULT_POLICY_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/default_policy.wasm"));

/// An engine, a linker and limits: loads policies that then share them.
#[derive(Clone)]
pub struct Sandbox {
    engine: Engine,
    // Shared: every loaded policy holds a `Sandbox`, and a deep linker clone is costly.
    linker: Arc<Linker<HostState>>,
    config: Arc<SandboxConfig>,
    cache: Option<CompileCache>,
    /// When set, only policies signed by one of these keys load (the embedded one always does).
    trusted: Option<Arc<TrustedKeys>>,
}

impl Sandbox {
    /// Build the engine and the WASI linker for `config`.
    pub fn new(config: SandboxConfig) -> Result<Self, Error> {
        config.refuse_zero_limits()?;
        let engine = sandbox::build_engine(&config)?;
        let linker = component::policy_linker(&engine)?;
        // A cache refused (not private to this user, read-only home, ...) only costs compile
        // time; say why once, as ssh does for ~/.ssh.
        let cache = config
            .cache_dir
            .as_deref()
            .and_then(|dir| CompileCache::open(dir).map_err(|refusal| tracing::warn!("{refusal}")).ok())
            .map(|cache| cache.with_max_bytes(config.cache_max_bytes));
        Ok(Sandbox { engine, linker: Arc::new(linker), config: Arc::new(config), cache, trusted: None })
    }

    /// This sandbox, loading only policies signed by one of `keys` ([`signing`](crate::signing)):
    /// [`load_file`](Self::load_file) reads the signature beside the file, and
    /// [`load_signed`](Self::load_signed) takes it; [`load_bytes`](Self::load_bytes) refuses.
    pub fn trusting(mut self, keys: TrustedKeys) -> Self {
        self.trusted = Some(Arc::new(keys));
        self
    }

    /// The keys a policy must be signed by, when there are any.
    pub fn trusted_keys(&self) -> Option<&TrustedKeys> {
        self.trusted.as_deref()
    }

    /// The limits in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The wasmtime engine (for inspection and tooling).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Load a policy component from a file (on a trusting sandbox, with its signature from
    /// `FILE.sig`).
    pub fn load_file(&self, path: &Path) -> Result<Policy, Error> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::unreadable(format_args!("policy {}", path.display()), &e))?;
        // The signature is read only where it is asked for.
        let signature = match self.trusted {
            Some(_) => signing::read_signature(path)?,
            None => None,
        };
        self.load_signed(&path.display().to_string(), &bytes, signature.as_deref())
    }

    /// Load a policy component from bytes and its signature line (`None`: unsigned), checked
    /// against the trusted keys first when the sandbox has any.
    pub fn load_signed(&self, name: &str, bytes: &[u8], signature: Option<&str>) -> Result<Policy, Error> {
        if let Some(keys) = &self.trusted {
            keys.check(name, bytes, signature)?;
        }
        self.compile_and_prepare(name, bytes)
    }

    /// Load a policy component from bytes; `name` identifies it in errors. A trusting sandbox
    /// refuses it as unsigned: give the signature with [`load_signed`](Self::load_signed).
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Policy, Error> {
        self.load_signed(name, bytes, None)
    }

    fn compile_and_prepare(&self, name: &str, bytes: &[u8]) -> Result<Policy, Error> {
        let compiled = match &self.cache {
            Some(cache) => {
                cache.load_or_compile(&self.engine, bytes, || component::compile(&self.engine, name, bytes))?
            }
            None => component::compile(&self.engine, name, bytes)?,
        };
        let pre = component::prepare(&self.engine, &self.linker, name, &compiled)?;
        let sha256 = sha256_hex(bytes).into();
        Ok(Policy { sandbox: self.clone(), pre, name: name.to_string(), sha256, interrupt: None })
    }

    /// Load the embedded default policy.
    pub fn load_default(&self) -> Result<Policy, Error> {
        // Part of the binary: trusted as the binary is.
        self.compile_and_prepare(DEFAULT_POLICY_NAME, DEFAULT_POLICY_WASM)
    }
}

/// A policy component ready to decide. Cheap to share across threads (`Clone`, `Send`, `Sync`).
#[derive(Clone)]
pub struct Policy {
    sandbox: Sandbox,
    pre: PolicyPre,
    name: String,
    /// SHA-256 of the component's bytes, lowercase hex.
    sha256: Arc<str>,
    /// Stops every call from outside (a candidate under check); `None` for a policy in service.
    interrupt: Option<Arc<Interrupt>>,
}

impl Policy {
    /// The name given at load time (a path, or `<embedded default policy>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the component's bytes, lowercase hex: which policy decided, as decisions
    /// record it.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The sandbox it runs in (to load another policy beside it, with the same limits).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The same policy, its calls stopped early when `interrupt` fires.
    pub fn interruptible(&self, interrupt: Arc<Interrupt>) -> Policy {
        Policy { interrupt: Some(interrupt), ..self.clone() }
    }

    /// The same policy, no longer interruptible from outside.
    pub fn uninterruptible(self) -> Policy {
        Policy { interrupt: None, ..self }
    }

    /// Whether calls hand the case over packed in one buffer (the component exports
    /// `runretry:policy/packed`, as every policy built with `runretry-kit` does) rather than
    /// as typed values.
    pub fn is_packed(&self) -> bool {
        self.pre.is_packed()
    }

    /// Whether the policy decides about failed runs (it exports the run interface,
    /// `runretry:policy/policy`): [`decide`](Self::decide) and [`select_steps`](Self::select_steps).
    pub fn decides_runs(&self) -> bool {
        self.pre.decides_runs()
    }

    /// Whether the policy decides about failed task tries (it exports the task interface,
    /// `runretry:policy/task-policy`): [`decide_task`](Self::decide_task).
    pub fn decides_tasks(&self) -> bool {
        self.pre.decides_tasks()
    }

    /// The same policy called through its typed `policy` interface even when it has `packed`:
    /// for tests and benchmarks that compare the two.
    #[doc(hidden)]
    pub fn typed_calls(&self) -> Policy {
        Policy { pre: self.pre.typed_only(), ..self.clone() }
    }

    /// The complete decision for a case, from a fresh instance (a trap poisons a store, and one
    /// decision must never see another's state).
    pub fn decide(&self, case: &Case) -> Result<Decision, Error> {
        self.check_decides_runs()?;
        let mut store = self.new_store(&case.run);
        let exports = self.instantiate(&mut store)?;
        self.decide_in(&mut store, &exports, case)
    }

    /// What a re-execution with `strategy` runs (steps and, for asset jobs, asset and check
    /// selections), or the policy's refusal.
    pub fn select_steps(&self, run: &Run, strategy: Strategy) -> Result<SelectionAnswer, Error> {
        self.check_decides_runs()?;
        let mut store = self.new_store(run);
        let exports = self.instantiate(&mut store)?;
        self.select_steps_in(&mut store, &exports, run, strategy)
    }

    /// The decision for a task's failed try, from a fresh instance.
    pub fn decide_task(&self, task: &TaskCase) -> Result<TaskDecision, Error> {
        self.check_decides_tasks()?;
        let mut store = sandbox::new_store(
            &self.sandbox.engine,
            &self.sandbox.config,
            seed_for(&task_seed(task)),
            self.interrupt.clone(),
        );
        let exports = self.instantiate(&mut store)?;
        self.decide_task_in(&mut store, &exports, task)
    }

    /// An instance kept for many calls: faster (no instantiation per call) but calls share the
    /// guest's memory, so use it only for policies you trust to be stateless, e.g. replaying
    /// history. Any failure poisons it; later calls then fail fast.
    pub fn warm(&self) -> Result<WarmPolicy, Error> {
        // Seeded per call in `guarded`; instantiation itself sees a fixed seed.
        let mut store =
            sandbox::new_store(&self.sandbox.engine, &self.sandbox.config, seed_for(""), self.interrupt.clone());
        let exports = self.instantiate(&mut store)?;
        Ok(WarmPolicy { policy: self.clone(), store, exports, poisoned: None })
    }

    /// A store whose clocks and randomness are a function of `run` (see `determinism`).
    fn new_store(&self, run: &Run) -> Store<HostState> {
        sandbox::new_store(&self.sandbox.engine, &self.sandbox.config, seed_for(&run.run_id), self.interrupt.clone())
    }

    fn instantiate(&self, store: &mut Store<HostState>) -> Result<PolicyExports, Error> {
        self.pre.instantiate(&mut *store).map_err(|e| sandbox::classify(e, store, &self.sandbox.config))
    }

    fn decide_in(&self, store: &mut Store<HostState>, exports: &PolicyExports, case: &Case) -> Result<Decision, Error> {
        self.check_input(&case.run)?;
        case.failure.validate().map_err(|(path, message)| Error::bad_input(format!("{path}: {message}")))?;
        case.validate_for_release().map_err(|(path, message)| Error::bad_input(format!("{path}: {message}")))?;
        store.data_mut().call.wall = crate::determinism::wall_clock_at(case.failure.now);
        let budget = AnswerBudget::new(&case.run, self.sandbox.config.max_output_bytes);
        let decision = exports
            .should_retry(&mut *store, &case.run, &case.failure, &case.config, budget)
            .map_err(|e| sandbox::classify(e, store, &self.sandbox.config))??;
        validate::check_decision(&case.run, &case.config, decision, self.sandbox.config.max_output_bytes)
    }

    fn decide_task_in(
        &self,
        store: &mut Store<HostState>,
        exports: &PolicyExports,
        task: &TaskCase,
    ) -> Result<TaskDecision, Error> {
        let size = runretry_kit::text_bytes(task);
        let cap = self.sandbox.config.max_input_bytes;
        if size > cap {
            return Err(Error::bad_input(format!(
                "the task case is {size} bytes of text, over the {cap} byte input cap"
            )));
        }
        task.validate().map_err(|(path, message)| Error::bad_input(format!("{path}: {message}")))?;
        store.data_mut().call.wall = crate::determinism::wall_clock_at(task.now);
        let budget = AnswerBudget::for_task(self.sandbox.config.max_output_bytes);
        let decision = exports
            .decide_task(&mut *store, task, budget)
            .map_err(|e| sandbox::classify(e, store, &self.sandbox.config))??;
        validate::check_task_decision(decision, self.sandbox.config.max_output_bytes)
    }

    /// A run case asked of a task-only policy is refused before any call, naming the export.
    fn check_decides_runs(&self) -> Result<(), Error> {
        if self.decides_runs() {
            return Ok(());
        }
        Err(Error::invalid_component(format!(
            "{}: does not export {POLICY_EXPORT}: it is a task policy and cannot decide about a failed run",
            self.name
        )))
    }

    /// A task case asked of a run-only policy is refused before any call, naming the export.
    fn check_decides_tasks(&self) -> Result<(), Error> {
        if self.decides_tasks() {
            return Ok(());
        }
        Err(Error::invalid_component(format!(
            "{}: does not export {TASK_EXPORT}: it is a run policy and cannot decide about a failed task",
            self.name
        )))
    }

    fn select_steps_in(
        &self,
        store: &mut Store<HostState>,
        exports: &PolicyExports,
        run: &Run,
        strategy: Strategy,
    ) -> Result<SelectionAnswer, Error> {
        self.check_input(run)?;
        let budget = AnswerBudget::new(run, self.sandbox.config.max_output_bytes);
        let answer = exports
            .select_steps(&mut *store, run, strategy, budget)
            .map_err(|e| sandbox::classify(e, store, &self.sandbox.config))??;
        match answer {
            Ok(selection) => {
                let selection =
                    validate::check_selection(run, strategy, selection, self.sandbox.config.max_output_bytes)?;
                Ok(SelectionAnswer::Selected { strategy, selection })
            }
            // The refusal is the guest's text, shown and logged as is: clipped like any other.
            Err(error) => Ok(SelectionAnswer::Refused { strategy, error: clip_untrusted(&error) }),
        }
    }

    /// The guarantees the contract gives a policy about its input (a case read from JSON was
    /// checked already; one built in code is checked here), and the input cap.
    fn check_input(&self, run: &Run) -> Result<(), Error> {
        // Bytes of text in the run, found by walking the model.
        let size = runretry_kit::text_bytes(run);
        let cap = self.sandbox.config.max_input_bytes;
        if size > cap {
            return Err(Error::bad_input(format!("the run is {size} bytes of text, over the {cap} byte input cap")));
        }
        run.validate().map_err(|(path, message)| Error::bad_input(format!("{path}: {message}")))
    }
}

/// A policy instance reused across calls (see [`Policy::warm`]).
pub struct WarmPolicy {
    policy: Policy,
    store: Store<HostState>,
    exports: PolicyExports,
    poisoned: Option<Error>,
}

impl WarmPolicy {
    /// Decide with the kept instance; fuel and deadline are reset for every call.
    pub fn decide(&mut self, case: &Case) -> Result<Decision, Error> {
        self.policy.check_decides_runs()?;
        self.guarded(&case.run.run_id, |policy, store, exports| policy.decide_in(store, exports, case))
    }

    /// Select steps with the kept instance.
    pub fn select_steps(&mut self, run: &Run, strategy: Strategy) -> Result<SelectionAnswer, Error> {
        self.policy.check_decides_runs()?;
        self.guarded(&run.run_id, |policy, store, exports| policy.select_steps_in(store, exports, run, strategy))
    }

    /// Decide about a task's failed try with the kept instance.
    pub fn decide_task(&mut self, task: &TaskCase) -> Result<TaskDecision, Error> {
        self.policy.check_decides_tasks()?;
        self.guarded(&task_seed(task), |policy, store, exports| policy.decide_task_in(store, exports, task))
    }

    fn guarded<R>(
        &mut self,
        seed: &str,
        call: impl FnOnce(&Policy, &mut Store<HostState>, &PolicyExports) -> Result<R, Error>,
    ) -> Result<R, Error> {
        if let Some(error) = &self.poisoned {
            return Err(error.clone());
        }
        sandbox::begin_call(&mut self.store, &self.policy.sandbox.config, seed_for(seed));
        let result = call(&self.policy, &mut self.store, &self.exports);
        // Bad input never reached the guest; anything else may have left it half-way.
        if let Err(error) = &result {
            if !error.is_bad_input() {
                self.poisoned = Some(error.clone());
            }
        }
        result
    }
}

/// What seeds a task call's randomness: the task instance and its try (`dag/task/run/map#try`),
/// so the same failed try draws the same stream, as a run's calls do from its run id.
fn task_seed(task: &TaskCase) -> String {
    format!("{}/{}/{}/{}#{}", task.dag_id, task.task_id, task.run_id, task.map_index, task.try_number)
}
