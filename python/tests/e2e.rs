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

use common::{crate_dir, maturin_develop, path_with, run, signed_copy, venv};
use runretry::SandboxConfig;
use runretry_serve::{ServeConfig, Server};
use runretry_test_guests::example_policy;

/// The bearer token of the service the bindings' tests call.
const SERVICE_TOKEN: &str = "e2e-service-token";

#[test]
fn python_package_and_dagster_integration() {
    let venv = venv();
    maturin_develop(&venv);
    let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-e2e/shadow-agreement.md");
    // The service `RemotePolicy` calls: the default policy, behind a token.
    let service = Server::start(ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(SERVICE_TOKEN.into()),
        sandbox: SandboxConfig { cache_dir: None, ..SandboxConfig::default() },
        poll_interval: None,
        ..ServeConfig::default()
    })
    .unwrap();
    // The backoff example signed, for the signed-policy tests of the bindings.
    let signed = signed_copy(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-e2e/signed"),
        example_policy("backoff_policy"),
        "backoff.wasm",
    );
    let output = run(
        "pytest",
        Command::new(venv.join("bin/python"))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/bindings", "tests/e2e"])
            .current_dir(crate_dir())
            .env("PATH", path_with(&venv))
            .env("RUNRETRY_E2E_REPORT", &report)
            .env("RUNRETRY_E2E_EXPORT_DIR", report.parent().unwrap())
            .env("RUNRETRY_E2E_BACKOFF_POLICY", example_policy("backoff_policy"))
            .env("RUNRETRY_E2E_CIRCUIT_BREAKER_POLICY", example_policy("circuit_breaker_policy"))
            .env("RUNRETRY_E2E_HOSTILE_POLICY", runretry_test_guests::hostile("panic"))
            .env("RUNRETRY_E2E_LOOP_POLICY", runretry_test_guests::hostile("infinite_loop"))
            .env("RUNRETRY_E2E_OTHER_WORLD_POLICY", runretry_test_guests::OTHER_WORLD)
            .env("RUNRETRY_E2E_CONTRACT_SUITE", crate_dir().join("../tests/conformance"))
            .env("RUNRETRY_E2E_SIGNED_POLICY", signed.join("backoff.wasm"))
            .env("RUNRETRY_E2E_TRUSTED_KEY", signed.join("trusted.pub"))
            .env("RUNRETRY_E2E_OTHER_KEY", signed.join("other.pub"))
            .env("RUNRETRY_E2E_SERVICE_URL", format!("http://{}", service.local_addr()))
            .env("RUNRETRY_E2E_RUNRETRY_BIN", runretry_binary())
            .env("RUNRETRY_E2E_SERVICE_TOKEN", SERVICE_TOKEN),
    );
    service.shutdown().unwrap();
    println!("{output}");
    if let Ok(table) = std::fs::read_to_string(&report) {
        println!("shadow-mode agreement:\n{table}");
    }
}

/// The `runretry` binary of this workspace (the fleet test runs `runretry serve` and stops it
/// mid-run): built by `cargo test --workspace` before any test runs, and built here otherwise.
fn runretry_binary() -> std::path::PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target dir holds tmp");
    let binary = target.join("debug/runretry");
    if !binary.exists() {
        run(
            "building the runretry binary",
            Command::new(env!("CARGO"))
                .args(["build", "-p", "runretry-cli", "--bin", "runretry"])
                .env("CARGO_TARGET_DIR", target),
        );
    }
    binary
}
