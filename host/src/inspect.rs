//! `runretry inspect`: what a component is and whether it can serve as a policy.

use std::fmt;

use crate::component;
pub use crate::component::WasmKind;
use crate::contract::{PACKED_EXPORT, POLICY_EXPORT, TASK_EXPORT};
use crate::policy::Sandbox;

/// What inspection found.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub size: usize,
    /// What the bytes are.
    pub kind: WasmKind,
    /// The component's imports (empty unless it compiled).
    pub imports: Vec<String>,
    /// The component's exports.
    pub exports: Vec<String>,
    /// `None` when it satisfies the contract; otherwise why not.
    pub problem: Option<String>,
}

impl Inspection {
    /// It can be loaded as a policy.
    pub fn satisfies_contract(&self) -> bool {
        self.problem.is_none()
    }
}

/// Inspect `bytes` (named `name`) with the sandbox's engine.
pub fn inspect(sandbox: &Sandbox, name: &str, bytes: &[u8]) -> Inspection {
    let mut report = Inspection {
        name: name.to_string(),
        size: bytes.len(),
        kind: component::wasm_kind(bytes),
        imports: Vec::new(),
        exports: Vec::new(),
        problem: None,
    };
    match component::compile(sandbox.engine(), name, bytes) {
        Ok(compiled) => {
            (report.imports, report.exports) = component::imports_and_exports(sandbox.engine(), &compiled);
            report.problem = sandbox.load_bytes(name, bytes).err().map(|e| e.to_string());
        }
        Err(e) => report.problem = Some(e.to_string()),
    }
    report
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file:     {}", self.name)?;
        writeln!(f, "size:     {} bytes", self.size)?;
        let kind = match self.kind {
            WasmKind::Component => "component",
            WasmKind::CoreModule => "core module",
            WasmKind::NotWasm => "not WebAssembly",
        };
        writeln!(f, "kind:     {kind}")?;
        let exports = |name: &str| self.exports.iter().any(|e| e == name);
        let runs = match (exports(POLICY_EXPORT), exports(PACKED_EXPORT)) {
            (true, true) => Some("runs (Dagster), called with the case packed"),
            (true, false) => Some("runs (Dagster)"),
            _ => None,
        };
        let tasks = exports(TASK_EXPORT).then_some("tasks (Airflow)");
        let decides = match (runs, tasks) {
            (Some(runs), Some(tasks)) => format!("{runs}; {tasks}"),
            (Some(one), None) | (None, Some(one)) => one.to_string(),
            (None, None) => "nothing (no runretry policy export)".to_string(),
        };
        let world = match (runs.is_some(), tasks.is_some(), exports(PACKED_EXPORT)) {
            (true, true, _) => "runretry:policy/run-and-task-policy@0.4.0",
            (true, false, true) => "runretry:policy/retry-policy-packed@0.4.0",
            (true, false, false) => "runretry:policy/retry-policy@0.4.0",
            (false, true, _) => "runretry:policy/task-retry-policy@0.4.0",
            (false, false, _) => "unknown",
        };
        writeln!(f, "decides:  {decides}")?;
        writeln!(f, "world:    {world}")?;
        writeln!(f, "exports:  {}", self.exports.len())?;
        for export in &self.exports {
            writeln!(f, "  {export}")?;
        }
        writeln!(f, "imports:  {}", self.imports.len())?;
        for import in &self.imports {
            writeln!(f, "  {import}")?;
        }
        match &self.problem {
            None => writeln!(f, "contract: satisfied"),
            Some(problem) => writeln!(f, "contract: NOT satisfied: {problem}"),
        }
    }
}
