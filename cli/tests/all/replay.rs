//! `runretry replay`: a candidate against a baseline policy or a decision log's recorded
//! decisions; the report's counts, formats, and the CI gate's exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use runretry_serve::{DecisionLogConfig, ServeConfig, Server};
use serde_json::{json, Value};

use crate::serve::{case_for, config, log_lines, Client};
use crate::support::{example_policy, example_text, repo};

fn replay(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_runretry"))
        .arg("replay")
        .args(args)
        .env("RUNRETRY_CACHE", "off")
        .output()
        .expect("run runretry replay");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "runretry panicked: {stderr}");
    output
}

fn report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    })
}

/// The twelve spec examples' decide cases, one per line.
fn examples_jsonl(dir: &Path) -> String {
    let mut lines = String::new();
    let mut names: Vec<_> = std::fs::read_dir(repo().join("tests/conformance/examples")).unwrap().flatten().collect();
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap();
        if case["kind"] != "select_steps" {
            lines.push_str(&case.to_string());
            lines.push('\n');
        }
    }
    let path = dir.join("cases.jsonl");
    std::fs::write(&path, lines).unwrap();
    path.display().to_string()
}

/// A server of the default policy logging every answer to `dir/decisions.jsonl` (returned).
fn logging_server(dir: &Path) -> (Server, PathBuf) {
    let log = dir.join("decisions.jsonl");
    let server =
        Server::start(ServeConfig { decision_log: Some(DecisionLogConfig::new(&log)), ..config(dir) }).unwrap();
    (server, log)
}

/// The embedded default policy as a file in `dir`, for `--candidate`.
fn default_policy_file(dir: &Path) -> String {
    let path = dir.join("default.wasm");
    std::fs::write(&path, runretry::DEFAULT_POLICY_WASM).unwrap();
    path.display().to_string()
}

fn kinds(report: &Value) -> Vec<(String, u64)> {
    report["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kind"].as_str().unwrap().to_string(), k["count"].as_u64().unwrap()))
        .collect()
}

/// The cases exported from a job failing on every tick under Dagster's own retries (4 ticks, a
/// root and a retry each; tests/replay/README.md): the circuit breaker avoids the retries of the
/// ticks after its threshold (2), and nothing else changes.
#[test]
fn the_circuit_breaker_avoids_the_retries_of_a_storm() {
    let storm = repo().join("tests/replay/storm-cases.jsonl");
    let breaker = example_policy("circuit_breaker_policy");
    let output = replay(&["--candidate", breaker, "--format", "json", storm.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = report(&output);
    assert_eq!((report["cases"].as_u64(), report["changed"].as_u64()), (Some(8), Some(2)), "{report:#}");
    assert_eq!((report["avoided_runs"].as_u64(), report["extra_runs"].as_u64()), (Some(2), Some(0)));
    let storm_job = &report["jobs"][0];
    assert_eq!((storm_job["job"].as_str(), storm_job["avoided_runs"].as_u64()), (Some("storm"), Some(2)));
    // The avoided retries are the first runs of ticks 3 and 4: the cases' 5th and 7th lines.
    let lines: Vec<Value> =
        std::fs::read_to_string(&storm).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let mut avoided: Vec<&str> = report["kinds"].as_array().unwrap().iter().find(|k| k["kind"] == "retry").unwrap()
        ["sample_run_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    avoided.sort();
    let mut expected = vec![lines[4]["run"]["run_id"].as_str().unwrap(), lines[6]["run"]["run_id"].as_str().unwrap()];
    expected.sort();
    assert_eq!(avoided, expected);

    let text = String::from_utf8(replay(&["--candidate", breaker, storm.to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("storm: 2 of 8 changed, 2 runs avoided"), "{text}");
}

#[test]
fn a_policy_against_itself_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases = examples_jsonl(dir.path());
    let output = replay(&[
        "--candidate",
        example_policy("infra_only_policy"),
        "--baseline",
        example_policy("infra_only_policy"),
        "--format",
        "json",
        "--max-changed",
        "0",
        &cases,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report = report(&output);
    assert_eq!(report["cases"], 8, "the spec examples that decide: {report}");
    assert_eq!(report["changed"], 0);
    assert!(kinds(&report).is_empty());
}

/// The wrong policy ignores `dagster/max_retries`: the report names the cases that change and
/// how, and --max-changed gates on it.
#[test]
fn a_wrong_candidate_shows_its_changes_and_fails_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let cases = examples_jsonl(dir.path());
    let output = replay(&["--candidate", runretry_test_guests::WRONG_MAX_RETRIES, "--format", "json", &cases]);
    assert_eq!(output.status.code(), Some(0), "no gate without --max-changed");
    let report = report(&output);
    let changed = report["changed"].as_u64().unwrap();
    assert!(changed >= 1, "{report}");
    assert_eq!(report["baseline"], "<embedded default policy>");
    let by_kind = kinds(&report);
    assert!(!by_kind.is_empty() && by_kind.iter().all(|(_, n)| *n <= changed), "{by_kind:?}");
    let samples: Vec<&str> =
        report["kinds"][0]["sample_run_ids"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(!samples.is_empty(), "{report}");
    let jobs_changed: u64 = report["jobs"].as_array().unwrap().iter().map(|j| j["changed"].as_u64().unwrap()).sum();
    assert_eq!(jobs_changed, changed, "the per-job table adds up");
    let gate =
        |max: &str| replay(&["--candidate", runretry_test_guests::WRONG_MAX_RETRIES, "--max-changed", max, &cases]);
    assert_eq!(gate("0").status.code(), Some(1));
    assert_eq!(gate(&changed.to_string()).status.code(), Some(0));
    assert_eq!(gate("100%").status.code(), Some(0));
    assert_eq!(gate("0.1%").status.code(), Some(1));
    let bad = gate("lots");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("percentage"));
    let markdown = replay(&["--candidate", runretry_test_guests::WRONG_MAX_RETRIES, "--format", "markdown", &cases]);
    let markdown = String::from_utf8(markdown.stdout).unwrap();
    assert!(markdown.contains("### Per job") && markdown.contains(samples[0]), "{markdown}");
    let text = replay(&["--candidate", runretry_test_guests::WRONG_MAX_RETRIES, &cases]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("changes by kind:") && text.contains("extra runs"), "{text}");
}

/// Replaying a server's decision log: the same policy changes nothing; the backoff policy
/// changes exactly the delays of the retries, and adds them up.
#[test]
fn a_decision_log_replays_against_its_recorded_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = logging_server(dir.path());
    let client = Client::new(server.local_addr());
    for i in 0..20 {
        assert_eq!(client.post("/v1/decide", case_for(&format!("run-{i}")).as_bytes()).0, 200);
    }
    assert_eq!(client.post("/v1/decide", example_text("12").as_bytes()).0, 200);
    assert_eq!(client.post("/v1/decide", b"{}").0, 400);
    let _ = client.post("/v1/select-steps?strategy=ALL_STEPS", example_text("10").as_bytes());
    drop(server);
    assert_eq!(log_lines(&log).len(), 23);
    let log = log.display().to_string();

    let default = default_policy_file(dir.path());
    let same_output = replay(&["--candidate", &default, "--recorded", "--format", "json", &log]);
    let same = report(&same_output);
    assert_eq!(same["cases"], 21, "records without a case, and select-steps records, are skipped");
    let said = String::from_utf8_lossy(&same_output.stderr).to_string();
    assert!(
        said.contains("skipped 2 decision-log records with nothing to replay (1 of other endpoints, 1 without a case"),
        "replay must say what it skipped: {said}"
    );
    assert_eq!(same["baseline"], "recorded");
    assert_eq!(same["changed"], 0, "{same}");

    let output = replay(&["--candidate", example_policy("backoff_policy"), "--recorded", "--format", "json", &log]);
    assert_eq!(output.status.code(), Some(0));
    let report = report(&output);
    assert_eq!(report["changed"], 20, "{report}");
    assert_eq!(kinds(&report), [("delay".to_string(), 20)]);
    assert_eq!(report["extra_runs"], 0);
    assert_eq!(report["extra_steps"], 0);
    assert!(report["added_delay_seconds"].as_f64().unwrap() > 20.0 * 20.0, "{report}");

    let cases = examples_jsonl(dir.path());
    let plain = replay(&["--candidate", example_policy("backoff_policy"), "--recorded", &cases]);
    assert_eq!(plain.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&plain.stderr).contains("--recorded needs decision-log records"));
}

/// The permanent-errors example's task cases, with their conformance fields, one per line.
fn task_cases_jsonl(dir: &Path) -> String {
    let cases: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/permanent-errors-policy/cases/tasks.json")).unwrap(),
    )
    .unwrap();
    let lines: String = cases.as_array().unwrap().iter().map(|case| format!("{case}\n")).collect();
    let path = dir.join("tasks.jsonl");
    std::fs::write(&path, lines).unwrap();
    path.display().to_string()
}

/// Task cases (Airflow) replay beside run cases: against the default policy (Airflow's own
/// retries), the permanent-errors policy avoids exactly the tries its permanent errors would
/// have spent, and reports them per task; the run cases in the same file still count as runs.
#[test]
fn task_cases_replay_beside_run_cases_and_permanent_errors_avoid_tries() {
    let dir = tempfile::tempdir().unwrap();
    let tasks_path = task_cases_jsonl(dir.path());
    let tasks = std::fs::read_to_string(&tasks_path).unwrap();
    let expected_fails: Vec<bool> =
        tasks.lines().map(|line| serde_json::from_str::<Value>(line).unwrap()["expect"]["action"] == "fail").collect();
    let runs = std::fs::read_to_string(examples_jsonl(dir.path())).unwrap();
    let mixed = dir.path().join("mixed.jsonl");
    std::fs::write(&mixed, format!("{tasks}{runs}")).unwrap();

    let output = replay(&[
        "--candidate",
        example_policy("permanent_errors_policy"),
        "--format",
        "json",
        mixed.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let summary = report(&output);
    let task_count = tasks.lines().count();
    assert_eq!(summary["cases"], task_count + runs.lines().count(), "every task case and run case: {summary}");
    assert_eq!(summary["candidate_errors"], 0, "{summary}");
    // The default retries every one of these tries (retries remain): each failed at once is a
    // try avoided, with the retry delay it would have waited.
    let avoided = expected_fails.iter().filter(|fails| **fails).count();
    assert!(avoided > 0);
    assert_eq!(summary["avoided_runs"], avoided, "{summary}");
    assert_eq!(summary["extra_runs"], 0, "{summary}");
    assert!(summary["added_delay_seconds"].as_f64().unwrap() < 0.0, "the avoided tries' waits are saved: {summary}");
    let etl_load = summary["jobs"].as_array().unwrap().iter().find(|job| job["job"] == "etl.load").expect("per task");
    assert_eq!(etl_load["avoided_runs"], avoided, "{summary}");
    assert!(kinds(&summary).contains(&("retry".to_string(), avoided as u64)), "{summary}");

    // The text report names the task as a job.
    let text = replay(&["--candidate", example_policy("permanent_errors_policy"), &tasks_path]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("etl.load:") && text.contains("avoided"), "{text}");

    // A task-only candidate fails on every run case, and says so as errors, not as a crash.
    let output =
        replay(&["--candidate", runretry_test_guests::TASK_RULES, "--format", "json", mixed.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(report(&output)["candidate_errors"], runs.lines().count());

    // A bad task line is refused naming the line and the field.
    std::fs::write(&mixed, format!("{tasks}{{\"task\": {{\"dag_id\": 1}}}}\n")).unwrap();
    let bad = replay(&["--candidate", example_policy("permanent_errors_policy"), mixed.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(said.contains(&format!("mixed.jsonl:{}", task_count + 1)) && said.contains("task.dag_id"), "{said}");
}

/// A decision log of `/v1/decide-task` answers replays against its recorded task decisions:
/// the same policy changes nothing, and permanent-errors changes exactly the permanent ones.
#[test]
fn a_decision_log_of_task_decisions_replays() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = logging_server(dir.path());
    let client = Client::new(server.local_addr());
    let tasks = std::fs::read_to_string(task_cases_jsonl(dir.path())).unwrap();
    let mut permanent = 0;
    for line in tasks.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        permanent += usize::from(case["expect"]["action"] == "fail");
        let (status, answer) = client.post("/v1/decide-task", json!({"task": case["task"]}).to_string().as_bytes());
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(client.post("/v1/decide-task", br#"{"task": {}}"#).0, 400);
    drop(server);
    let log = log.display().to_string();

    let default = default_policy_file(dir.path());
    let same = report(&replay(&["--candidate", &default, "--recorded", "--format", "json", &log]));
    assert_eq!(same["cases"], tasks.lines().count(), "the unparsed request is skipped: {same}");
    assert_eq!(same["changed"], 0, "{same}");

    let changed = report(&replay(&[
        "--candidate",
        example_policy("permanent_errors_policy"),
        "--recorded",
        "--format",
        "json",
        &log,
    ]));
    assert_eq!(changed["avoided_runs"], permanent, "{changed}");
}
