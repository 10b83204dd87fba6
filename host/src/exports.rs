//! The policy's two functions, called with the model's own values: with `runretry-kit`'s
//! `wasmtime` feature the canonical ABI lowers a [`Run`] and lifts a [`Decision`] directly, so
//! there are no bindings types to convert to and from, and no field list here to keep in step
//! with the WIT. The export is type-checked once, when the component is loaded.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{ComponentExportIndex, Func, InstancePre, TypedFunc};
use wasmtime::{AsContextMut, Engine};

use runretry_kit::{Config, Decision, Failure, Run, Selection, Strategy};

use crate::component::POLICY_EXPORT;
use crate::sandbox::HostState;

type ShouldRetry<'a> = TypedFunc<(&'a Run, &'a Failure, &'a Config), (Decision,)>;
type SelectSteps<'a> = TypedFunc<(&'a Run, Strategy), (Result<Selection, String>,)>;

/// A policy component linked and checked against the contract: instantiating it is all a call
/// needs.
#[derive(Clone)]
pub(crate) struct PolicyPre {
    pre: InstancePre<HostState>,
    should_retry: ComponentExportIndex,
    select_steps: ComponentExportIndex,
}

/// One instance's exports.
pub(crate) struct PolicyExports {
    should_retry: Func,
    select_steps: Func,
}

impl PolicyPre {
    /// Find both functions of [`POLICY_EXPORT`] and check their types against the model.
    pub(crate) fn new(engine: &Engine, pre: InstancePre<HostState>) -> wasmtime::Result<PolicyPre> {
        let component = pre.component();
        let interface = component
            .get_export_index(None, POLICY_EXPORT)
            .ok_or_else(|| wasmtime::format_err!("no exported instance named `{POLICY_EXPORT}`"))?;
        let instance_type = pre.instance_type();
        let Some(ComponentItem::ComponentInstance(exported)) =
            component.component_type().get_export(engine, POLICY_EXPORT).map(|export| export.ty)
        else {
            wasmtime::bail!("`{POLICY_EXPORT}` is not an instance");
        };
        let function = |name: &str| -> wasmtime::Result<_> {
            let index = component
                .get_export_index(Some(&interface), name)
                .ok_or_else(|| wasmtime::format_err!("`{POLICY_EXPORT}` has no function `{name}`"))?;
            match exported.get_export(engine, name).map(|export| export.ty) {
                Some(ComponentItem::ComponentFunc(func)) => Ok((index, func)),
                _ => wasmtime::bail!("`{POLICY_EXPORT}` export `{name}` is not a function"),
            }
        };
        let (should_retry, func) = function("should-retry")?;
        func.typecheck::<(&Run, &Failure, &Config), (Decision,)>(&instance_type)
            .map_err(|e| e.context("type-checking export func `should-retry`"))?;
        let (select_steps, func) = function("select-steps")?;
        func.typecheck::<(&Run, Strategy), (Result<Selection, String>,)>(&instance_type)
            .map_err(|e| e.context("type-checking export func `select-steps`"))?;
        Ok(PolicyPre { pre, should_retry, select_steps })
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
        Ok(PolicyExports { should_retry: func(&self.should_retry)?, select_steps: func(&self.select_steps)? })
    }
}

impl PolicyExports {
    /// `should-retry`.
    pub(crate) fn should_retry(
        &self,
        mut store: impl AsContextMut<Data = HostState>,
        run: &Run,
        failure: &Failure,
        config: &Config,
    ) -> wasmtime::Result<Decision> {
        // SAFETY: `PolicyPre::new` checked this export's type against these parameters and result.
        let func: ShouldRetry<'_> = unsafe { TypedFunc::new_unchecked(self.should_retry) };
        let (decision,) = func.call(&mut store, (run, failure, config))?;
        Ok(decision)
    }

    /// `select-steps`.
    pub(crate) fn select_steps(
        &self,
        mut store: impl AsContextMut<Data = HostState>,
        run: &Run,
        strategy: Strategy,
    ) -> wasmtime::Result<Result<Selection, String>> {
        // SAFETY: as above, checked in `PolicyPre::new`.
        let func: SelectSteps<'_> = unsafe { TypedFunc::new_unchecked(self.select_steps) };
        let (answer,) = func.call(&mut store, (run, strategy))?;
        Ok(answer)
    }
}
