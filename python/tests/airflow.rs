//! Airflow, from `cargo test --workspace`: the default task policy's retry delay against
//! Airflow's own, and `runretry.airflow.RetryPolicy` end to end against a real Airflow.
//!
//! Makes (or reuses) a virtualenv under the target dir holding the pinned apache-airflow, runs
//! `TaskInstance.next_retry_datetime` there on 1,000 random retry settings and tries
//! (`generators/airflow_retry_delay/gen.py`, a new seed each run, printed), and checks that
//! `runretry_default_policy::airflow::default_retry_delay` gives every delay to the bit. The kept
//! cases (`tests/airflow/retry-delay.jsonl`, read natively by the default policy's own tests)
//! must be what Airflow generates from their seed.
//!
//! Then installs this workspace's runretry package into the same virtualenv and runs
//! `tests/airflow_e2e/scenarios.py` twice: on a SQLite metadata database, and on a PostgreSQL
//! database of its own on 127.0.0.1:5432 (skipped, saying so, only when no server answers).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[path = "../../tests/airflow/check.rs"]
mod check;
mod common;

use common::{crate_dir, maturin_develop, path_with, run, signed_copy, venv_with};
use runretry_test_guests::example_policy;

/// What the Airflow virtualenv holds: maturin installs the runretry package into it, and
/// Airflow reaches PostgreSQL through psycopg2 and, for its async engine, asyncpg.
const AIRFLOW: &[&str] = &["apache-airflow==3.3.2", "maturin==1.16.0", "psycopg2-binary==2.9.13", "asyncpg==0.32.0"];
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
    let home = tempfile::tempdir().unwrap();
    run_scenarios(home.path(), None);
}

/// The same scenarios with the metadata database on PostgreSQL (127.0.0.1:5432, trust auth), as
/// production Airflow runs it: a database of the test's own, dropped at the end.
#[test]
fn airflow_retry_policy_end_to_end_on_postgresql() {
    let venv = installed_venv();
    let Some(database) = PostgresDatabase::create(&venv) else {
        println!("SKIPPED: no PostgreSQL server answers on 127.0.0.1:5432");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    run_scenarios(home.path(), Some(&database.url()));
}

/// The Airflow virtualenv with this workspace's runretry package installed in it (by maturin,
/// with the workspace's dev profile into the shared target dir), once per test process: two
/// maturin builds at once collide in `target/maturin`.
fn installed_venv() -> PathBuf {
    static INSTALLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let venv = venv_with("airflow", AIRFLOW);
            maturin_develop(&venv);
            venv
        })
        .clone()
}

/// Migrate a metadata database in `home` (SQLite there, or the database at `sql_alchemy_conn`)
/// and run the scenarios against it, failing with their report.
fn run_scenarios(home: &Path, sql_alchemy_conn: Option<&str>) {
    let venv = installed_venv();
    let airflow = |command: &mut Command| {
        command
            .env("AIRFLOW_HOME", home)
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AIRFLOW__CORE__DAGS_FOLDER", crate_dir().join("tests/airflow_e2e"))
            .env("PATH", path_with(&venv))
            .env_remove("PYTHONPATH");
        if let Some(url) = sql_alchemy_conn {
            command.env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", url);
        }
    };
    let mut migrate = Command::new(venv.join("bin/airflow"));
    migrate.args(["db", "migrate"]);
    airflow(&mut migrate);
    run("airflow db migrate", &mut migrate);
    let mut scenarios = Command::new(venv.join("bin/python"));
    scenarios
        .arg(crate_dir().join("tests/airflow_e2e/scenarios.py"))
        .current_dir(crate_dir().join("tests/airflow_e2e"))
        .env("RUNRETRY_E2E_PERMANENT_POLICY", example_policy("permanent_errors_policy"))
        .env("RUNRETRY_E2E_TASK_RULES", runretry_test_guests::TASK_RULES)
        // The permanent-errors example signed, for the trusted_keys checks.
        .env(
            "RUNRETRY_E2E_SIGNED_DIR",
            signed_copy(&home.join("signed"), example_policy("permanent_errors_policy"), "permanent.wasm"),
        )
        .env("RUNRETRY_CACHE", "off");
    airflow(&mut scenarios);
    let output = scenarios.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let report = text.lines().find(|line| line.starts_with("RUNRETRY-AIRFLOW-E2E ")).unwrap_or("(no report)");
    println!("{report}");
    assert!(output.status.success(), "the Airflow scenarios failed ({}): {report}\n{text}", output.status);
}

/// A PostgreSQL database of this test's own, created through the virtualenv's psycopg2 and
/// dropped when it goes out of scope (the test passed or not).
struct PostgresDatabase {
    venv: PathBuf,
    name: String,
}

impl PostgresDatabase {
    /// Create it; `None` when no server answers (the one case a PostgreSQL test is skipped).
    fn create(venv: &Path) -> Option<Self> {
        if std::net::TcpStream::connect_timeout(&"127.0.0.1:5432".parse().unwrap(), Duration::from_secs(2)).is_err() {
            return None;
        }
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let database = PostgresDatabase {
            venv: venv.to_path_buf(),
            name: format!("runretry_airflow_e2e_{}_{stamp}", std::process::id()),
        };
        database.admin(&format!("CREATE DATABASE {}", database.name));
        Some(database)
    }

    fn url(&self) -> String {
        format!("postgresql+psycopg2://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// Run `statement` on the server's `postgres` database, outside a transaction.
    fn admin(&self, statement: &str) {
        let code = format!(
            "import psycopg2\nc = psycopg2.connect(host='127.0.0.1', port=5432, user='postgres', dbname='postgres')\n\
             c.autocommit = True\nc.cursor().execute({statement:?})\n"
        );
        run(statement, Command::new(self.venv.join("bin/python")).args(["-c", &code]));
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // WITH (FORCE): Airflow's pooled connections may outlive the scenarios' process by a moment.
        self.admin(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}
