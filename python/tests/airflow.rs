//! The default task policy's retry delay against Airflow's own, from `cargo test --workspace`.
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

/// What the Airflow virtualenv holds.
const AIRFLOW: &[&str] = &["apache-airflow==3.3.2"];
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
