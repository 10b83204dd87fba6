//! Airflow, from `cargo test --workspace`: the default task policy's retry delay against
//! Airflow's own, and `runretry.airflow.RetryPolicy` end to end against a real Airflow.
//!
//! Makes (or reuses) a virtualenv under the target dir holding the pinned apache-airflow, runs
//! `TaskInstance.next_retry_datetime` there on 1,000 random retry settings and tries
//! (`generators/airflow_retry_delay/gen.py`, a new seed each run, printed), and checks that
//! `runretry_default_policy::airflow::default_retry_delay` gives every delay to the bit. The kept
//! cases (`tests/airflow/retry-delay.jsonl`, read natively by the default policy's own tests)
//! must be what Airflow generates from their seed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

#[path = "../../tests/airflow/check.rs"]
mod check;
mod common;

use common::{crate_dir, run, venv_with};
use runretry_test_guests::example_policy;

/// What the Airflow virtualenv holds (maturin installs the runretry package into it).
const AIRFLOW: &[&str] = &["apache-airflow==3.3.2", "maturin==1.16.0"];
/// How `tests/airflow/retry-delay.jsonl` was generated.
const KEPT_SEED: u64 = 1;
const KEPT_CASES: usize = 300;

#[test]
fn the_default_delay_is_airflows_on_random_settings() {
    let venv = venv_with("airflow", AIRFLOW);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let cases = generate(&venv, seed, 1_000);
    assert_eq!(cases.lines().count(), 1_000);
    let failures: Vec<String> = cases.lines().filter_map(|line| check::check(line).err()).collect();
    assert!(failures.is_empty(), "seed {seed}: {} of 1000 delays differ:\n{}", failures.len(), failures.join("\n"));

    let kept_path = crate_dir().join("../tests/airflow/retry-delay.jsonl");
    let kept = std::fs::read_to_string(&kept_path).unwrap();
    assert!(
        kept == generate(&venv, KEPT_SEED, KEPT_CASES),
        "{}: not what Airflow generates from seed {KEPT_SEED}; regenerate it with gen.py {KEPT_SEED} {KEPT_CASES}",
        kept_path.display()
    );
}

/// `count` cases from Airflow, from `seed`.
fn generate(venv: &Path, seed: u64, count: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out: PathBuf = dir.path().join("cases.jsonl");
    run(
        "generating Airflow's retry delays",
        Command::new(venv.join("bin/python"))
            .arg(crate_dir().join("tests/generators/airflow_retry_delay/gen.py"))
            .args([seed.to_string(), count.to_string()])
            .arg(&out)
            .env("AIRFLOW_HOME", dir.path().join("airflow-home")),
    );
    std::fs::read_to_string(&out).unwrap()
}

/// `runretry.airflow.RetryPolicy` in real Airflow: `tests/airflow_e2e/scenarios.py` runs its DAGs
/// with `dag.test()` on a fresh SQLite metadata database and checks every try (see its doc).
#[test]
fn airflow_retry_policy_end_to_end() {
    let venv = venv_with("airflow", AIRFLOW);
    let bin = venv.join("bin");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // maturin builds with the workspace's dev profile into the shared target dir (the Dagster
    // e2e builds the same extension: it is compiled once).
    run(
        "building the package with maturin",
        Command::new(bin.join("maturin"))
            .args(["develop", "--quiet"])
            .current_dir(crate_dir())
            .env("VIRTUAL_ENV", &venv)
            .env("PATH", &path),
    );
    let home = tempfile::tempdir().unwrap();
    let airflow = |command: &mut Command| {
        command
            .env("AIRFLOW_HOME", home.path())
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AIRFLOW__CORE__DAGS_FOLDER", crate_dir().join("tests/airflow_e2e"))
            .env("PATH", &path)
            .env_remove("PYTHONPATH");
    };
    let mut migrate = Command::new(bin.join("airflow"));
    migrate.args(["db", "migrate"]);
    airflow(&mut migrate);
    run("airflow db migrate", &mut migrate);
    let mut scenarios = Command::new(bin.join("python"));
    scenarios
        .arg(crate_dir().join("tests/airflow_e2e/scenarios.py"))
        .current_dir(crate_dir().join("tests/airflow_e2e"))
        .env("RUNRETRY_E2E_PERMANENT_POLICY", example_policy("permanent_errors_policy"))
        .env("RUNRETRY_E2E_TASK_RULES", runretry_test_guests::TASK_RULES)
        .env("RUNRETRY_CACHE", "off");
    airflow(&mut scenarios);
    let output = scenarios.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let report = text.lines().find(|line| line.starts_with("RUNRETRY-AIRFLOW-E2E ")).unwrap_or("(no report)");
    println!("{report}");
    assert!(output.status.success(), "the Airflow scenarios failed ({}): {report}\n{text}", output.status);
}
