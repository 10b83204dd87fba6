//! The names the contract gives a policy component: its version, the interfaces it exports, and
//! the imports it may have. A leaf: loading (`component`) and calling (`exports`) both read it.

/// The version of the contract (the WIT package `runretry:policy`) this host implements.
pub const CONTRACT_VERSION: &str = "0.4.0";

/// The run interface: a policy that decides about failed runs (Dagster) exports it.
pub const POLICY_EXPORT: &str = "runretry:policy/policy@0.4.0";

/// The task interface: a policy that decides about failed task tries (Airflow) exports it. A
/// policy exports [`POLICY_EXPORT`], this, or both.
pub const TASK_EXPORT: &str = "runretry:policy/task-policy@0.4.0";

/// The optional interface with the same functions taking the case as one buffer (the kit's
/// Rust guests export it; see `runretry_kit::packed`). Called instead of [`POLICY_EXPORT`]
/// when present.
pub const PACKED_EXPORT: &str = "runretry:policy/packed@0.4.0";

/// The contract's interfaces without their version: a policy exporting one under another version
/// was built against another revision of the contract.
pub(crate) const EXPORTS_UNVERSIONED: [&str; 3] =
    ["runretry:policy/policy@", "runretry:policy/task-policy@", "runretry:policy/packed@"];

/// Import namespaces a policy may use. A Rust std guest imports ~13 WASI interfaces; every one
/// is linked with nothing granted. Sockets and HTTP are refused outright: a policy has no
/// business on the network, and saying so at load time beats a failure mid-decision.
pub const ALLOWED_IMPORT_PREFIXES: [&str; 6] =
    ["wasi:cli/", "wasi:io/", "wasi:clocks/", "wasi:random/", "wasi:filesystem/", "runretry:policy/"];
