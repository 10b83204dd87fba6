//! Task policies (contract 0.4.0, Airflow): the default task policy through the command line,
//! a task-only component (`task_rules`) loaded, inspected and refused where it cannot answer,
//! every hostile task answer refused, and the fallback of a failing task policy.

use std::process::Output;

use runretry::rules::MAX_TASK_DELAY_SECONDS;
use runretry::{
    Deployment, Error, ExceptionInfo, OnFailure, OnPolicyError, Sandbox, SandboxConfig, TaskAction, TaskCase,
};

use crate::support::{runretry, stderr, stdout_json};

/// Try `try_number` of `etl.load` (3 retries, 60 s doubling, capped at 600 s) raising `class`.
fn task_json(try_number: u32, class: &str, message: &str) -> String {
    serde_json::json!({"task": {
        "orchestrator": "airflow 3.3.2", "dag_id": "etl", "task_id": "load",
        "run_id": "scheduled__2026-12-07T10:00:00+00:00", "try_number": try_number, "max_tries": 3,
        "settings": {"retries": 3, "retry_delay_seconds": 60.0, "retry_exponential_backoff": 2.0,
                     "max_retry_delay_seconds": 600.0},
        "run_type": "scheduled", "logical_date": "2026-12-07 10:00:00+00:00",
        "exception": {"class_name": class, "bases": ["builtins.Exception", "builtins.BaseException"], "message": message},
    }})
    .to_string()
}

fn task(message: &str, class: &str) -> TaskCase {
    let mut exception = ExceptionInfo::new(class, message);
    exception.bases = vec!["builtins.OSError".into(), "builtins.Exception".into()];
    TaskCase::new("etl", "load", "manual__1", 1, 3, exception)
}

fn sandbox() -> Sandbox {
    Sandbox::new(SandboxConfig { cache_dir: None, ..SandboxConfig::default() }).unwrap()
}

fn task_rules() -> runretry::Policy {
    sandbox().load_file(std::path::Path::new(runretry_test_guests::TASK_RULES)).unwrap()
}

#[test]
fn the_default_policy_decides_a_task_case_as_airflow_would() {
    let output = runretry(&["decide", "-"], &task_json(2, "builtins.ConnectionError", "reset"));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let decision = stdout_json(&output);
    assert_eq!(decision["action"], "retry");
    // ceil(60 * 2^1) = 120 s, plus the try's jitter in [0, 120): Airflow's own rule.
    let delay = decision["delay_seconds"].as_f64().unwrap();
    assert!((120.0..240.0).contains(&delay) && delay.fract() == 0.0, "{decision}");
    let last = stdout_json(&runretry(&["decide", "-"], &task_json(4, "builtins.ConnectionError", "reset")));
    assert_eq!(last["action"], "fail", "{last}");
    let never = task_json(1, "airflow.sdk.exceptions.AirflowFailException", "stop");
    let never = stdout_json(&runretry(&["decide", "-"], &never));
    assert_eq!(never["action"], "fail", "{never}");
}

#[test]
fn a_bad_task_case_names_the_field() {
    let output = runretry(&["decide", "-"], &task_json(0, "builtins.ValueError", "x"));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("task.try_number: tries count from 1"), "{}", stderr(&output));
    let both = r#"{"run": {"run_id": "r", "status": "FAILURE"}, "task": {}}"#;
    let output = runretry(&["decide", "-"], both);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not both"), "{}", stderr(&output));
    let misspelt = task_json(1, "builtins.ValueError", "x").replace("max_tries", "max_try");
    let output = runretry(&["decide", "-"], &misspelt);
    assert!(stderr(&output).contains("max_try"), "{}", stderr(&output));
}

#[test]
fn a_task_only_policy_loads_says_what_it_decides_and_answers_tasks_only() {
    let policy = task_rules();
    assert!(policy.decides_tasks() && !policy.decides_runs());
    let output = runretry(&["inspect", runretry_test_guests::TASK_RULES], "");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("decides:  tasks (Airflow)"), "{report}");
    assert!(report.contains("world:    runretry:policy/task-retry-policy@0.4.0"), "{report}");
    assert!(report.contains("contract: satisfied"), "{report}");

    let permanent = policy.decide_task(&task("denied", "builtins.PermissionError")).unwrap();
    assert_eq!(permanent.action, TaskAction::Fail);
    let transient = policy.decide_task(&task("reset", "builtins.ConnectionError")).unwrap();
    assert_eq!((transient.action, transient.delay_seconds), (TaskAction::Retry, Some(7.0)));

    // A run case asked of it is refused before any call, naming the export it lacks.
    let run = crate::support::example_case("01");
    let refused = policy.decide(&run).unwrap_err();
    assert!(refused.to_string().contains("does not export runretry:policy/policy@0.4.0"), "{refused}");
}

#[test]
fn a_run_only_policy_refuses_a_task_naming_the_export() {
    let policy = sandbox().load_file(std::path::Path::new(runretry_test_guests::WRONG_MAX_RETRIES)).unwrap();
    assert!(policy.decides_runs() && !policy.decides_tasks());
    let refused = policy.decide_task(&task("reset", "builtins.ConnectionError")).unwrap_err();
    assert!(refused.to_string().contains("does not export runretry:policy/task-policy@0.4.0"), "{refused}");
    let output = runretry(
        &["decide", "-", "--policy", runretry_test_guests::WRONG_MAX_RETRIES],
        &task_json(1, "builtins.ValueError", "x"),
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}

#[test]
fn hostile_task_answers_are_refused_naming_the_field() {
    let policy = task_rules();
    for (message, field) in [
        ("nan-delay", "delay_seconds: NaN"),
        ("fail-with-delay", "only a retry has a delay"),
        ("many-events", "events: 1001 events"),
        ("decade", "delay_seconds: 315360000"),
    ] {
        match policy.decide_task(&task(message, "builtins.ValueError")) {
            Err(Error::InvalidOutput { reason }) => assert!(reason.contains(field), "{message}: {reason}"),
            other => panic!("{message}: expected invalid output, got {other:?}"),
        }
    }
    const { assert!(315_360_000.0 > MAX_TASK_DELAY_SECONDS) };
    match policy.decide_task(&task("trap", "builtins.ValueError")) {
        Err(Error::GuestTrap { stderr, .. }) => assert!(stderr.contains("trapped on purpose for load"), "{stderr}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn a_failing_task_policy_falls_back_as_its_mode_says() {
    let sandbox = sandbox();
    let trap = task("trap", "builtins.ValueError");
    let with = |mode| Deployment::of(task_rules(), OnFailure::new(&sandbox, mode).unwrap());

    let fell_back = with(OnPolicyError::Default).decide_task_telling(&trap);
    assert!(fell_back.fell_back.is_some());
    let decision = fell_back.decision.unwrap();
    assert_eq!((decision.action, decision.delay_seconds), (TaskAction::Retry, Some(300.0)), "Airflow's own");
    assert!(decision.events[0].contains("decided with the default policy instead"), "{:?}", decision.events);

    let given_up = with(OnPolicyError::GiveUp).decide_task(&trap).unwrap();
    assert_eq!(given_up.action, TaskAction::Fail);
    assert!(given_up.reason.contains("the task is not retried"), "{}", given_up.reason);

    assert!(matches!(with(OnPolicyError::Fail).decide_task(&trap), Err(Error::GuestTrap { .. })));
}

#[test]
fn the_dagster_version_is_read_checked_and_overridden() {
    let case = serde_json::to_string(&crate::support::example_case("01")).unwrap();
    let ok = runretry(&["decide", "-", "--dagster-version", "1.13.29"], &case);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let old = runretry(&["decide", "-", "--dagster-version", "1.9.0"], &case);
    assert_eq!(old.status.code(), Some(2));
    assert!(stderr(&old).contains("Dagster 1.9.0 is not supported"), "{}", stderr(&old));
    // The range starts where FROM_ASSET_FAILURE does (docs/dagster-versions.md §3.1).
    let oldest = runretry(&["decide", "-", "--dagster-version", "1.10.12"], &case);
    assert_eq!(oldest.status.code(), Some(0), "{}", stderr(&oldest));
    let older = runretry(&["decide", "-", "--dagster-version", "1.10.11"], &case);
    assert_eq!(older.status.code(), Some(2));
    assert!(stderr(&older).contains("rules of Dagster 1.10.12 to 1.13.x"), "{}", stderr(&older));
    let mut with_version: serde_json::Value = serde_json::from_str(&case).unwrap();
    with_version["config"]["dagster_version"] = "1.12.a".into();
    let bad = runretry(&["decide", "-"], &with_version.to_string());
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("config.dagster_version"), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("is not a Dagster release"), "{}", stderr(&bad));
}

#[test]
fn conformance_runs_each_kind_of_case_a_policy_decides_and_skips_the_rest() {
    let stdout = |output: &Output| String::from_utf8_lossy(&output.stdout).into_owned();
    // The default policy decides both: the default suite's run and task cases all pass.
    let both = runretry(&["conformance", "--suite", "default"], "");
    assert_eq!(both.status.code(), Some(0), "{}", stdout(&both));
    let last = stdout(&both).lines().last().unwrap_or_default().to_string();
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed > 480 && last.ends_with(" passed, 0 failed"), "{last}");
    // A task-only policy: the contract suite's generated runs are not its to answer.
    let contract = runretry(&["conformance", "--policy", runretry_test_guests::TASK_RULES, "--suite", "contract"], "");
    assert_eq!(contract.status.code(), Some(0), "{}", stdout(&contract));
    assert!(stdout(&contract).contains("0 passed, 0 failed,") && stdout(&contract).contains(" skipped"));
    // On the permanent-errors example's cases it answers the task cases (wrongly: 7 s, not
    // Airflow's 120 s) and skips the run cases.
    let cases = crate::support::repo().join("examples/permanent-errors-policy/cases");
    let mixed = runretry(
        &["conformance", "--policy", runretry_test_guests::TASK_RULES, "--suite", cases.to_str().unwrap()],
        "",
    );
    assert_eq!(mixed.status.code(), Some(1), "{}", stdout(&mixed));
    assert!(stdout(&mixed).contains("delay_seconds: expected 120.0, got 7.0"), "{}", stdout(&mixed));
    assert!(stdout(&mixed).contains(" skipped"), "{}", stdout(&mixed));
}
