//! The Dagster integration on older Dagster releases, end to end: for each release below, a
//! virtualenv holding it (and its own dagster-postgres), the `runretry` package built into it,
//! and the e2e scenarios that matter most against a live daemon of that release: the sensor in
//! shadow mode must agree with the daemon on every failure (the case names the running release,
//! so the default policy decides by that release's rules), then own the retries in enforce mode.

use std::process::Command;

mod common;

use common::{crate_dir, maturin_develop, path_with, run, venv_with};
use runretry_test_guests::example_policy;

/// A release of each older minor the issue names, before the 1.12.19 backfill gate for 1.12.
const RELEASES: &[(&str, &str)] = &[("1.10.21", "0.26.21"), ("1.11.16", "0.27.16"), ("1.12.18", "0.28.18")];

/// The scenarios (two tests): shadow then enforce on SQLite, and one enforce retry.
const SCENARIOS: &str = "test_shadow_then_enforce and sqlite or test_enforce_retries_the_op_that_raises";

#[test]
fn shadow_mode_agrees_with_older_dagster_daemons() {
    for (dagster, postgres) in RELEASES {
        let requirements = [
            format!("dagster=={dagster}"),
            format!("dagster-postgres=={postgres}"),
            "pytest==9.2.0".into(),
            "maturin==1.16.0".into(),
            "psycopg2-binary==2.9.13".into(),
        ];
        let requirements: Vec<&str> = requirements.iter().map(String::as_str).collect();
        let venv = venv_with(&format!("py-e2e-{dagster}"), &requirements);
        maturin_develop(&venv);
        let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("py-e2e-{dagster}/shadow.md"));
        let output = run(
            &format!("the e2e scenarios on Dagster {dagster}"),
            Command::new(venv.join("bin/python"))
                .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_dagster.py", "-k", SCENARIOS])
                .current_dir(crate_dir())
                .env("PATH", path_with(&venv))
                .env("RUNRETRY_E2E_DAGSTER_VERSION", dagster)
                .env("RUNRETRY_E2E_REPORT", &report)
                .env("RUNRETRY_E2E_BACKOFF_POLICY", example_policy("backoff_policy"))
                .env("RUNRETRY_E2E_HOSTILE_POLICY", runretry_test_guests::hostile("panic")),
        );
        println!("Dagster {dagster}:\n{output}");
        assert!(output.contains("2 passed"), "Dagster {dagster}: {output}");
        if let Ok(table) = std::fs::read_to_string(&report) {
            println!("shadow-mode agreement on Dagster {dagster}:\n{table}");
        }
    }
}
