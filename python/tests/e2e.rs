//! The Python package and its Dagster integration, end to end, from `cargo test --workspace`.
//!
//! Makes (or reuses) a virtualenv under the target dir holding the pinned Dagster, pytest and
//! maturin; builds and installs the `runretry` package with maturin into it, against this
//! workspace's target dir (so nothing is compiled twice); and runs the pytest suites: the
//! bindings' own, and `tests/e2e` against a live Dagster deployment. A pytest failure fails this
//! test with pytest's output.

use std::path::Path;
use std::process::Command;

mod common;

use common::{crate_dir, run, venv};
use runretry_test_guests::example_policy;

#[test]
fn python_package_and_dagster_integration() {
    let venv = venv();
    let bin = venv.join("bin");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // maturin builds with the workspace's dev profile into the shared target dir.
    run(
        "building the package with maturin",
        Command::new(bin.join("maturin"))
            .args(["develop", "--quiet"])
            .current_dir(crate_dir())
            .env("VIRTUAL_ENV", &venv)
            .env("PATH", &path),
    );
    let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-e2e/shadow-agreement.md");
    let output = run(
        "pytest",
        Command::new(bin.join("python"))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/bindings", "tests/e2e"])
            .current_dir(crate_dir())
            .env("PATH", &path)
            .env("RUNRETRY_E2E_REPORT", &report)
            .env("RUNRETRY_E2E_EXPORT_DIR", report.parent().unwrap())
            .env("RUNRETRY_E2E_BACKOFF_POLICY", example_policy("backoff_policy"))
            .env("RUNRETRY_E2E_CIRCUIT_BREAKER_POLICY", example_policy("circuit_breaker_policy"))
            .env("RUNRETRY_E2E_HOSTILE_POLICY", runretry_test_guests::hostile("panic"))
            .env("RUNRETRY_E2E_LOOP_POLICY", runretry_test_guests::hostile("infinite_loop"))
            .env("RUNRETRY_E2E_OTHER_WORLD_POLICY", runretry_test_guests::OTHER_WORLD)
            .env("RUNRETRY_E2E_CONTRACT_SUITE", crate_dir().join("../tests/conformance")),
    );
    println!("{output}");
    if let Ok(table) = std::fs::read_to_string(&report) {
        println!("shadow-mode agreement:\n{table}");
    }
}
