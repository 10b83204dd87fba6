//! The names the contract gives a policy component: its version, the interfaces it exports, and
//! the imports it may have. A leaf: loading (`component`) and calling (`exports`) both read it.

/// The version of the contract (the WIT package `runretry:policy`) this host implements.
pub const CONTRACT_VERSION: &str = "0.3.0";

/// The interface a policy must export.
pub const POLICY_EXPORT: &str = "runretry:policy/policy@0.3.0";

/// The optional interface with the same functions taking the case as one buffer (the kit's
/// Rust guests export it; see `runretry_kit::packed`). Called instead of [`POLICY_EXPORT`]
/// when present.
pub const PACKED_EXPORT: &str = "runretry:policy/packed@0.3.0";

/// The export's name without its version: a policy exporting it under another version was built
/// against another revision of the contract.
pub(crate) const POLICY_EXPORT_UNVERSIONED: &str = "runretry:policy/policy@";

/// Import namespaces a policy may use. A Rust std guest imports ~13 WASI interfaces; every one
/// is linked with nothing granted. Sockets and HTTP are refused outright: a policy has no
/// business on the network, and saying so at load time beats a failure mid-decision.
pub const ALLOWED_IMPORT_PREFIXES: [&str; 6] =
    ["wasi:cli/", "wasi:io/", "wasi:clocks/", "wasi:random/", "wasi:filesystem/", "runretry:policy/"];
