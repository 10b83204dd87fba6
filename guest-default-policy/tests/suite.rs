//! The default conformance suite, run natively: every case file under `tests/conformance/`
//! against the library, with no Wasm in the way. A case is read with the kit's case format, as
//! the host reads it, and the answer is compared with `expect` by the kit's runner, the one the
//! host uses (`runretry_kit::conformance`). The whole suite takes milliseconds, which makes it the oracle for
//! mutation testing (docs/mutation-testing.md).
//!
//! Not mirrored: the host's checks of a decision's shape (`host/src/validate.rs`), which turn a
//! malformed decision into a policy failure rather than a field difference.

use std::path::{Path, PathBuf};

use runretry_default_policy::DefaultPolicy;
use runretry_kit::conformance::{load_cases, load_task_cases, run_native, run_native_tasks};

/// The default suite's directory.
fn suite_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance")
}

#[test]
fn default_suite_passes_natively() {
    let root = suite_root();
    let cases = load_cases(&root).unwrap_or_else(|e| panic!("{e}"));
    let report = run_native::<DefaultPolicy>(&cases, &[]);
    assert!(report.failures.is_empty(), "{report}");
    assert!(cases.len() > 150, "only {} cases under {}: is the suite there?", cases.len(), root.display());
}

/// The task cases of the suite (Airflow's own decisions, kept from Airflow 3.3.2), natively.
#[test]
fn default_task_cases_pass_natively() {
    let root = suite_root();
    let cases = load_task_cases(&root).unwrap_or_else(|e| panic!("{e}"));
    let report = run_native_tasks::<DefaultPolicy>(&cases, &[]);
    assert!(report.failures.is_empty(), "{report}");
    assert!(cases.len() > 250, "only {} task cases under {}", cases.len(), root.display());
}
