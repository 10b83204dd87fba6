//! The Python package and its Dagster integration, end to end, from `cargo test --workspace`.
//!
//! Makes (or reuses) a virtualenv under the target dir holding the pinned Dagster, pytest and
//! maturin; builds and installs the `runretry` package with maturin into it, against this
//! workspace's target dir (so nothing is compiled twice); and runs the pytest suites: the
//! bindings' own, and `tests/e2e` against a live Dagster deployment. A pytest failure fails this
//! test with pytest's output.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the virtualenv must hold; a venv made for another list is made again.
const REQUIREMENTS: &[&str] = &["dagster==1.13.29", "pytest==9.2.0", "maturin==1.16.0"];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `command`, failing the test with its output when it fails.
fn run(what: &str, command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed ({}):\n{text}", output.status);
    text
}

/// The virtualenv with the pinned packages, made once and reused while the pins are the same.
fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-e2e");
    let venv = dir.join("venv");
    let stamp = dir.join("requirements.txt");
    let wanted = REQUIREMENTS.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let _ = std::fs::remove_dir_all(&venv);
        std::fs::create_dir_all(&dir).unwrap();
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run("creating the virtualenv", Command::new(python).args(["-m", "venv"]).arg(&venv));
        run(
            "installing the pinned packages",
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(REQUIREMENTS),
        );
        std::fs::write(&stamp, wanted).unwrap();
    }
    venv
}

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
            .env("RUNRETRY_E2E_BACKOFF_POLICY", backoff_policy())
            .env("RUNRETRY_E2E_HOSTILE_POLICY", runretry_test_guests::hostile("panic"))
            .env("RUNRETRY_E2E_LOOP_POLICY", runretry_test_guests::hostile("infinite_loop"))
            .env("RUNRETRY_E2E_CONTRACT_SUITE", crate_dir().join("../tests/conformance")),
    );
    println!("{output}");
    if let Ok(table) = std::fs::read_to_string(&report) {
        println!("shadow-mode agreement:\n{table}");
    }
}

/// The backoff example policy, built from source by `runretry-test-guests`.
fn backoff_policy() -> &'static str {
    macro_rules! pick {
        ($name:ident, $path:expr, [$($suite:expr),*], [$($ignored:expr),*]) => {
            if stringify!($name) == "backoff_policy" {
                return $path;
            }
        };
    }
    runretry_test_guests::foreach_example_policy!(pick);
    panic!("no backoff_policy among the example policies")
}
