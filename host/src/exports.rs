//! The policy's functions, called with the model's own values: the run interface's two
//! ([`POLICY_EXPORT`]), the task interface's one ([`TASK_EXPORT`]), or all three. A component
//! built with the kit also exports the run functions as [`PACKED_EXPORT`], the case in one buffer
//! (`runretry_kit::packed`), and that is what is called: lowering a typed case costs one guest
//! `realloc` per string and list, a buffer one. Other components (Python, JavaScript,
//! hand-written WIT) are called through [`POLICY_EXPORT`], whose values `runretry-kit`'s
//! `wasmtime` feature lowers and lifts directly. A task case is small and always typed. Every
//! export is type-checked once, when the component is loaded.

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, Func, InstancePre, TypedFunc};
use wasmtime::{AsContextMut, Engine};

use runretry_kit::packed::{self, CaseRef, SelectionResult};
use runretry_kit::{Decision, Failure, Run, RunRetries, Selection, Strategy, TaskCase, TaskDecision};

use crate::answer_budget::AnswerBudget;
use crate::contract::{PACKED_EXPORT, POLICY_EXPORT, TASK_EXPORT};
use crate::error::{clip_untrusted, Error};
use crate::sandbox::HostState;

type ShouldRetry<'a> = TypedFunc<(&'a Run, &'a Failure, &'a RunRetries), (Decision,)>;
type SelectSteps<'a> = TypedFunc<(&'a Run, Strategy), (Result<Selection, String>,)>;
type PackedShouldRetry<'a> = TypedFunc<(&'a [u8],), (Result<Vec<u8>, String>,)>;
type PackedSelectSteps<'a> = TypedFunc<(&'a [u8], Strategy), (Result<Vec<u8>, String>,)>;
type DecideTask<'a> = TypedFunc<(&'a TaskCase,), (TaskDecision,)>;

/// A policy component linked and checked against the contract: instantiating it is all a call
/// needs.
#[derive(Clone)]
pub(crate) struct PolicyPre {
    pre: InstancePre<HostState>,
    /// `policy`'s functions, when the component decides about runs.
    typed: Option<Functions>,
    /// `packed`'s, when the component has them: these are called instead.
    packed: Option<Functions>,
    /// `task-policy`'s function, when the component decides about tasks.
    task: Option<ComponentExportIndex>,
}

/// Where an interface's two functions are.
#[derive(Clone, Copy)]
struct Functions {
    should_retry: ComponentExportIndex,
    select_steps: ComponentExportIndex,
}

/// One instance's exports.
pub(crate) struct PolicyExports {
    runs: Option<(Func, Func)>,
    decide_task: Option<Func>,
    packed: bool,
}

impl PolicyPre {
    /// Find the functions of [`POLICY_EXPORT`], [`PACKED_EXPORT`] and [`TASK_EXPORT`] that the
    /// component has (at least one of the first and the last: `component::prepare` checked),
    /// and check their types.
    pub(crate) fn new(engine: &Engine, pre: InstancePre<HostState>) -> wasmtime::Result<PolicyPre> {
        let component = pre.component().clone();
        let instance_type = pre.instance_type();
        let has = |interface| component.get_export_index(None, interface).is_some();
        let mut typed = None;
        if has(POLICY_EXPORT) {
            let (should_retry, func) = function(engine, &component, POLICY_EXPORT, "should-retry")?;
            func.typecheck::<(&Run, &Failure, &RunRetries), (Decision,)>(&instance_type)
                .map_err(|e| e.context(format!("type-checking `{POLICY_EXPORT}` func `should-retry`")))?;
            let (select_steps, func) = function(engine, &component, POLICY_EXPORT, "select-steps")?;
            func.typecheck::<(&Run, Strategy), (Result<Selection, String>,)>(&instance_type)
                .map_err(|e| e.context(format!("type-checking `{POLICY_EXPORT}` func `select-steps`")))?;
            typed = Some(Functions { should_retry, select_steps });
        }
        let mut packed = None;
        if typed.is_some() && has(PACKED_EXPORT) {
            let (should_retry, func) = function(engine, &component, PACKED_EXPORT, "should-retry")?;
            func.typecheck::<(&[u8],), (Result<Vec<u8>, String>,)>(&instance_type)
                .map_err(|e| e.context(format!("type-checking `{PACKED_EXPORT}` func `should-retry`")))?;
            let (select_steps, func) = function(engine, &component, PACKED_EXPORT, "select-steps")?;
            func.typecheck::<(&[u8], Strategy), (Result<Vec<u8>, String>,)>(&instance_type)
                .map_err(|e| e.context(format!("type-checking `{PACKED_EXPORT}` func `select-steps`")))?;
            packed = Some(Functions { should_retry, select_steps });
        }
        let mut task = None;
        if has(TASK_EXPORT) {
            let (decide_task, func) = function(engine, &component, TASK_EXPORT, "decide-task")?;
            func.typecheck::<(&TaskCase,), (TaskDecision,)>(&instance_type)
                .map_err(|e| e.context(format!("type-checking `{TASK_EXPORT}` func `decide-task`")))?;
            task = Some(decide_task);
        }
        Ok(PolicyPre { pre, typed, packed, task })
    }

    /// Whether run calls go through [`PACKED_EXPORT`].
    pub(crate) fn is_packed(&self) -> bool {
        self.packed.is_some()
    }

    /// Whether the component decides about runs ([`POLICY_EXPORT`]).
    pub(crate) fn decides_runs(&self) -> bool {
        self.typed.is_some()
    }

    /// Whether the component decides about tasks ([`TASK_EXPORT`]).
    pub(crate) fn decides_tasks(&self) -> bool {
        self.task.is_some()
    }

    /// The same component called through [`POLICY_EXPORT`] only (to compare the two).
    pub(crate) fn typed_only(&self) -> PolicyPre {
        PolicyPre { packed: None, ..self.clone() }
    }

    /// A new instance in `store`.
    pub(crate) fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = HostState>,
    ) -> wasmtime::Result<PolicyExports> {
        let instance = self.pre.instantiate(&mut store)?;
        let mut func = |index| {
            instance
                .get_func(&mut store, index)
                .ok_or_else(|| wasmtime::format_err!("an export checked at load is gone"))
        };
        let runs = match self.packed.as_ref().or(self.typed.as_ref()) {
            Some(functions) => Some((func(&functions.should_retry)?, func(&functions.select_steps)?)),
            None => None,
        };
        let decide_task = self.task.as_ref().map(&mut func).transpose()?;
        Ok(PolicyExports { runs, decide_task, packed: self.packed.is_some() })
    }
}

/// The export `name` of `interface`, and its type.
fn function(
    engine: &Engine,
    component: &Component,
    interface: &str,
    name: &str,
) -> wasmtime::Result<(ComponentExportIndex, ComponentFunc)> {
    let instance = component
        .get_export_index(None, interface)
        .ok_or_else(|| wasmtime::format_err!("no exported instance named `{interface}`"))?;
    let Some(ComponentItem::ComponentInstance(exported)) =
        component.component_type().get_export(engine, interface).map(|export| export.ty)
    else {
        wasmtime::bail!("`{interface}` is not an instance");
    };
    let index = component
        .get_export_index(Some(&instance), name)
        .ok_or_else(|| wasmtime::format_err!("`{interface}` has no function `{name}`"))?;
    match exported.get_export(engine, name).map(|export| export.ty) {
        Some(ComponentItem::ComponentFunc(func)) => Ok((index, func)),
        _ => wasmtime::bail!("`{interface}` export `{name}` is not a function"),
    }
}

impl PolicyExports {
    /// The run interface's functions; the policy must have them (`Policy` checks first).
    fn runs(&self) -> wasmtime::Result<(Func, Func)> {
        self.runs.ok_or_else(|| wasmtime::format_err!("the policy does not export {POLICY_EXPORT}"))
    }

    /// `should-retry`. The outer error is the call's (a trap, the deadline: `sandbox::classify`
    /// names it); the inner one an answer the host will not take.
    pub(crate) fn should_retry(
        &self,
        mut store: impl AsContextMut<Data = HostState>,
        run: &Run,
        failure: &Failure,
        config: &RunRetries,
        budget: AnswerBudget,
    ) -> wasmtime::Result<Result<Decision, Error>> {
        if self.packed {
            let case: CaseRef<'_> = (run, failure, config);
            let case = packed::pack(&case).map_err(wasmtime::Error::msg)?;
            // SAFETY: `PolicyPre::new` checked this export's type against these parameters and result.
            let func: PackedShouldRetry<'_> = unsafe { TypedFunc::new_unchecked(self.runs()?.0) };
            let answer = lifted(&mut store, budget.packed_bytes(), |store| func.call(store, (&case,)))?;
            return Ok(answer.and_then(|(answer,)| unpacked(answer, "should-retry", budget)));
        }
        // SAFETY: as above.
        let func: ShouldRetry<'_> = unsafe { TypedFunc::new_unchecked(self.runs()?.0) };
        let answer = lifted(&mut store, budget.lift_bytes(), |store| func.call(store, (run, failure, config)))?;
        Ok(answer.map(|(decision,)| decision))
    }

    /// `select-steps`; errors as for `should_retry`.
    pub(crate) fn select_steps(
        &self,
        mut store: impl AsContextMut<Data = HostState>,
        run: &Run,
        strategy: Strategy,
        budget: AnswerBudget,
    ) -> wasmtime::Result<Result<SelectionResult, Error>> {
        if self.packed {
            let run = packed::pack(run).map_err(wasmtime::Error::msg)?;
            // SAFETY: as above, checked in `PolicyPre::new`.
            let func: PackedSelectSteps<'_> = unsafe { TypedFunc::new_unchecked(self.runs()?.1) };
            let answer = lifted(&mut store, budget.packed_bytes(), |store| func.call(store, (&run, strategy)))?;
            return Ok(answer.and_then(|(answer,)| unpacked::<SelectionResult>(answer, "select-steps", budget)));
        }
        // SAFETY: as above.
        let func: SelectSteps<'_> = unsafe { TypedFunc::new_unchecked(self.runs()?.1) };
        let answer = lifted(&mut store, budget.lift_bytes(), |store| func.call(store, (run, strategy)))?;
        Ok(answer.map(|(answer,)| answer))
    }

    /// `decide-task`; errors as for `should_retry`.
    pub(crate) fn decide_task(
        &self,
        mut store: impl AsContextMut<Data = HostState>,
        task: &TaskCase,
        budget: AnswerBudget,
    ) -> wasmtime::Result<Result<TaskDecision, Error>> {
        let decide_task =
            self.decide_task.ok_or_else(|| wasmtime::format_err!("the policy does not export {TASK_EXPORT}"))?;
        // SAFETY: `PolicyPre::new` checked this export's type against these parameters and result.
        let func: DecideTask<'_> = unsafe { TypedFunc::new_unchecked(decide_task) };
        let answer = lifted(&mut store, budget.lift_bytes(), |store| func.call(store, (task,)))?;
        Ok(answer.map(|(decision,)| decision))
    }
}

/// Make a call that may copy at most `bytes` out of the guest (wasmtime's hostcall fuel, charged
/// before each string and list is copied, so nothing is allocated for a larger answer), and
/// tell an answer over that apart from a failed call: the policy is at fault for what it
/// answered, not for how it ran.
fn lifted<S: AsContextMut<Data = HostState>, T>(
    store: &mut S,
    bytes: usize,
    call: impl FnOnce(&mut S) -> wasmtime::Result<T>,
) -> wasmtime::Result<Result<T, Error>> {
    store.as_context_mut().set_hostcall_fuel(bytes);
    match call(store) {
        Ok(value) => Ok(Ok(value)),
        // wasmtime's error type for this is private: its message, pinned by a test, tells it.
        Err(e) if e.chain().any(|cause| cause.to_string().contains(HOSTCALL_FUEL_EXHAUSTED)) => {
            Ok(Err(Error::invalid_output(format!(
                "the answer is over the output cap: the policy handed the host more than {bytes} bytes at once \
                 (an answer's budget, {BUDGET_RULE})"
            ))))
        }
        Err(e) => Err(e),
    }
}

/// What wasmtime says when a guest hands over more than the store's hostcall fuel.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";
/// How an answer's budget is set, for errors.
const BUDGET_RULE: &str = "from --max-output-bytes and the tags the case holds, docs/sandbox.md";

/// A packed answer decoded, strictly and within its budget (its length was capped as it was
/// lifted). A guest that could not read its case, or answered a buffer that does not decode,
/// broke the contract: the error names the function and what is wrong, with the guest's own
/// text clipped.
fn unpacked<T: serde::de::DeserializeOwned>(
    answer: Result<Vec<u8>, String>,
    function: &str,
    budget: AnswerBudget,
) -> Result<T, Error> {
    let bytes = answer
        .map_err(|e| Error::invalid_output(format!("`{PACKED_EXPORT}` {function} failed: {}", clip_untrusted(&e))))?;
    packed::unpack_answer(&bytes, budget.lift_bytes()).map_err(|e| {
        Error::invalid_output(format!(
            "`{PACKED_EXPORT}` {function} answered a buffer the host does not take: {}",
            clip_untrusted(&e)
        ))
    })
}
