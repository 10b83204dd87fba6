//! Loading a policy component: recognising what the bytes are, checking imports against the
//! allow-list, and pre-instantiating against the contract so each call only instantiates.

use wasmtime::component::{types::ComponentItem, Component, Linker};
use wasmtime::Engine;

use crate::contract::{ALLOWED_IMPORT_PREFIXES, CONTRACT_VERSION, EXPORTS_UNVERSIONED, POLICY_EXPORT, TASK_EXPORT};
use crate::error::Error;
use crate::exports::PolicyPre;
use crate::sandbox::HostState;

/// What a file holds, judged from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A component (the only thing runretry runs).
    Component,
    /// A core module: the right language, the wrong packaging.
    CoreModule,
    /// Not WebAssembly at all.
    NotWasm,
}

/// Classify bytes by the Wasm preamble (magic, then version and layer).
pub(crate) fn wasm_kind(bytes: &[u8]) -> WasmKind {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => WasmKind::CoreModule,
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => WasmKind::Component,
        _ => WasmKind::NotWasm,
    }
}

/// Compile a component after checking what it is (the compile cache, when there is one, wraps
/// this call: `Sandbox::load_bytes`).
pub(crate) fn compile(engine: &Engine, name: &str, bytes: &[u8]) -> Result<Component, Error> {
    match wasm_kind(bytes) {
        WasmKind::Component => {}
        WasmKind::CoreModule => {
            return Err(Error::invalid_component(format!(
                "{name}: is a core WebAssembly module, not a component; build policies as \
                 components (for Rust: cargo build --target wasm32-wasip2)"
            )))
        }
        WasmKind::NotWasm => return Err(Error::invalid_component(format!("{name}: is not a WebAssembly file"))),
    }
    Component::new(engine, bytes)
        .map_err(|e| Error::invalid_component_caused(format!("{name}: does not compile: {e:#}"), &e))
}

/// Names of a component's imports and exports.
pub(crate) fn imports_and_exports(engine: &Engine, component: &Component) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
    let exports = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
    (imports, exports)
}

/// Refuse any import outside [`ALLOWED_IMPORT_PREFIXES`], naming it.
pub(crate) fn check_imports(name: &str, imports: &[String]) -> Result<(), Error> {
    match imports.iter().find(|i| !ALLOWED_IMPORT_PREFIXES.iter().any(|p| i.starts_with(p))) {
        Some(import) => Err(Error::invalid_component(format!(
            "{name}: imports {import:?}, which policies may not use (allowed: {})",
            ALLOWED_IMPORT_PREFIXES.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Check the export's shape and pre-instantiate: after this, a call is instantiate + call.
pub(crate) fn prepare(
    engine: &Engine,
    linker: &Linker<HostState>,
    name: &str,
    component: &Component,
) -> Result<PolicyPre, Error> {
    let (imports, exports) = imports_and_exports(engine, component);
    check_imports(name, &imports)?;
    let other_version = exports.iter().find_map(|e| {
        let unversioned = EXPORTS_UNVERSIONED.iter().find(|prefix| e.starts_with(*prefix))?;
        let version = &e[unversioned.len()..];
        (version != CONTRACT_VERSION).then_some((e, version))
    });
    if let Some((other, version)) = other_version {
        return Err(Error::invalid_component(format!(
            "{name}: is built against runretry:policy@{version}, but this runretry implements \
             runretry:policy@{CONTRACT_VERSION} (it exports {other}); rebuild the policy against wit/policy.wit \
             of this release (0.2.0 added asset data, 0.3.0 the job's run history and the failure's time, 0.4.0 \
             the Dagster version and task policies: see docs/writing-a-policy.md)"
        )));
    }
    if !exports.iter().any(|e| e == POLICY_EXPORT || e == TASK_EXPORT) {
        return Err(Error::invalid_component(format!(
            "{name}: exports neither {POLICY_EXPORT} nor {TASK_EXPORT} (it exports: {}); is it built for the \
             runretry:policy/retry-policy or task-retry-policy world?",
            if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
        )));
    }
    for (interface, functions) in
        [(POLICY_EXPORT, &["should-retry", "select-steps"][..]), (TASK_EXPORT, &["decide-task"])]
    {
        if let Some(ComponentItem::ComponentInstance(instance)) =
            component.component_type().get_export(engine, interface).map(|export| export.ty)
        {
            for function in functions {
                if instance.get_export(engine, function).is_none() {
                    return Err(Error::invalid_component(format!(
                        "{name}: export {interface} has no function {function:?}"
                    )));
                }
            }
        }
    }
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| Error::invalid_component(format!("{name}: cannot be linked: {e:#}")))?;
    PolicyPre::new(engine, pre).map_err(|e| {
        // The error names the interface at fault (`policy` or `packed`).
        Error::invalid_component(format!("{name}: an export does not match the contract: {e:#}"))
    })
}

/// A linker with WASI p2 (nothing granted) for every policy.
pub(crate) fn policy_linker(engine: &Engine) -> Result<Linker<HostState>, Error> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .and_then(|()| crate::determinism::link(&mut linker))
        .map_err(|e| Error::invalid_component_caused(format!("cannot link WASI: {e}"), &e))?;
    Ok(linker)
}
