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
use runretry::SandboxConfig;
use runretry_serve::{ServeConfig, Server};
use runretry_test_guests::example_policy;

/// The bearer token of the service the bindings' tests call.
const SERVICE_TOKEN: &str = "e2e-service-token";

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
    // The service `RemotePolicy` calls: the default policy, behind a token.
    let service = Server::start(ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(SERVICE_TOKEN.into()),
        sandbox: SandboxConfig { cache_dir: None, ..SandboxConfig::default() },
        poll_interval: None,
        ..ServeConfig::default()
    })
    .unwrap();
    let signed = signed_fixtures(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-e2e/signed"));
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

/// In `dir`: the backoff example signed (`backoff.wasm`, `backoff.wasm.sig`) by the key of
/// `trusted.pub`, and another key, `other.pub`, for the signed-policy tests of the bindings.
fn signed_fixtures(dir: &Path) -> std::path::PathBuf {
    use runretry::signing;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let (secret, public) = signing::generate_key_pair().unwrap();
    let (_, other) = signing::generate_key_pair().unwrap();
    std::fs::write(dir.join("trusted.pub"), public).unwrap();
    std::fs::write(dir.join("other.pub"), other).unwrap();
    let policy = dir.join("backoff.wasm");
    let component = std::fs::read(example_policy("backoff_policy")).unwrap();
    std::fs::write(&policy, &component).unwrap();
    let line = signing::sign("trusted.key", &secret, &component).unwrap();
    std::fs::write(signing::signature_path(&policy), format!("{line}\n")).unwrap();
    dir.to_path_buf()
}
