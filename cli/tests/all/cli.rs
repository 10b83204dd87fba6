//! The `runretry` binary end to end: the spec's examples, dagster.yaml, and every kind of bad
//! input getting its exit code and a message naming what is wrong (never a panic).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{example, repo, runretry, stderr, stdout_json};

/// Every spec example through the CLI with the embedded default policy: the expected fields.
#[test]
fn twelve_spec_examples_give_the_expected_answers() {
    let dir = repo().join("tests/conformance/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path().display().to_string();
        let case: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let expect = case["expect"].as_object().unwrap();
        let output = if case["kind"] == "select_steps" {
            let strategy = case["input"]["strategy"].as_str().unwrap();
            runretry(&["select-steps", "--strategy", strategy, &path], "")
        } else {
            runretry(&["decide", &path], "")
        };
        let got = stdout_json(&output);
        if let Some(error) = expect.get("error").filter(|e| !e.is_null()) {
            assert_eq!(output.status.code(), Some(1), "{path}: a refusal exits 1");
            assert_eq!(&got["error"], error, "{path}");
        } else {
            assert_eq!(output.status.code(), Some(0), "{path}: {}", stderr(&output));
        }
        for field in ["retry", "retry_number", "strategy", "steps", "new_run_tags", "action", "resubmit_run_id"] {
            if let Some(want) = expect.get(field).filter(|v| !v.is_null()) {
                assert_eq!(&got[field], want, "{path}: field {field}");
            }
        }
        if let Some(want) = expect.get("will_retry_tag").filter(|v| !v.is_null()) {
            let written = &got["failed_run_tags"]["dagster/will_retry"];
            let final_value = if written.is_null() { &case["run"]["tags"]["dagster/will_retry"] } else { written };
            assert_eq!(final_value, want, "{path}: will_retry_tag");
        }
        checked += 1;
    }
    assert_eq!(checked, 12);
}

#[test]
fn case_from_stdin() {
    let text = std::fs::read_to_string(example("06")).unwrap();
    let output = runretry(&["decide", "-"], &text);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout_json(&output)["strategy"], "ALL_STEPS");
}

#[test]
fn dagster_yaml_replaces_the_case_config() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("dagster.yaml");
    std::fs::write(&yaml, "storage:\n  sqlite:\n    base_dir: /tmp\nrun_retries:\n  enabled: false\n").unwrap();
    let output = runretry(&["decide", "--config", yaml.to_str().unwrap(), &example("01")], "");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout_json(&output)["action"], "NONE", "enabled: false in dagster.yaml wins over the case");
}

#[test]
fn bad_yaml_value_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("dagster.yaml");
    std::fs::write(&yaml, "run_retries:\n  enabled: true\n  max_retries: lots\n").unwrap();
    let output = runretry(&["decide", "--config", yaml.to_str().unwrap(), &example("01")], "");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("dagster.yaml") && message.contains("run_retries.max_retries"), "{message}");
}

#[test]
fn malformed_json_is_exit_2_naming_the_source() {
    let output = runretry(&["decide", "-"], "{\"run\": {");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("<stdin>"), "{}", stderr(&output));
}

#[test]
fn wrong_field_type_names_the_json_path() {
    let case = r#"{"run": {"run_id": "a", "status": "FAILURE", "steps": [{"key": "x", "status": "SUCCESS"}, {"key": "y", "upstream": "x", "status": "FAILURE"}]}}"#;
    let output = runretry(&["decide", "-"], case);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("run.steps[1].upstream"), "{}", stderr(&output));
}

#[test]
fn unknown_upstream_key_is_bad_input() {
    let case = r#"{"run": {"run_id": "a", "status": "FAILURE", "steps": [{"key": "y", "upstream": ["nope"], "status": "FAILURE"}]}}"#;
    let output = runretry(&["select-steps", "--strategy", "FROM_FAILURE", "-"], case);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("run.steps[0].upstream[0]"), "{}", stderr(&output));
}

#[test]
fn missing_case_file_is_exit_2() {
    let output = runretry(&["decide", "/nonexistent/case.json"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("/nonexistent/case.json"));
}

#[test]
fn missing_policy_file_is_exit_2() {
    let output = runretry(&["decide", "--policy", "/nonexistent/policy.wasm", &example("01")], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("/nonexistent/policy.wasm"));
}

#[test]
fn a_file_that_is_not_a_component_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let not_wasm = dir.path().join("policy.wasm");
    std::fs::write(&not_wasm, b"#!/bin/sh\necho retry\n").unwrap();
    let output = runretry(&["decide", "--policy", not_wasm.to_str().unwrap(), &example("01")], "");
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("is not a WebAssembly file"), "{}", stderr(&output));

    let core_module = dir.path().join("core.wasm");
    std::fs::write(&core_module, b"\0asm\x01\0\0\0").unwrap();
    let output = runretry(&["decide", "--policy", core_module.to_str().unwrap(), &example("01")], "");
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("core WebAssembly module"), "{}", stderr(&output));
}

#[test]
fn refusal_prints_error_json_and_exits_1() {
    let output = runretry(&["select-steps", "--strategy", "FROM_FAILURE", &example("12")], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout_json(&output)["error"].as_str().unwrap().contains("not failed or canceled"));
}

/// An asset job through the CLI: Dagster's test of a failed blocking check (T4), as a case.
#[test]
fn asset_selections_are_printed_for_an_asset_job() {
    let cases = repo().join("tests/conformance/10-asset-jobs.json");
    let all: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(cases).unwrap()).unwrap();
    let t4 = all.iter().find(|c| c["name"] == "t4_failed_blocking_check_decision").unwrap().to_string();
    let output = runretry(&["decide", "-"], &t4);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let decision = stdout_json(&output);
    assert_eq!(decision["asset_selection"], serde_json::json!(["a1_blocking_downstream", "a2_blocking"]));
    assert_eq!(decision["new_run_tags"]["dagster/is_asset_resume_retry"], "true");
    let output = runretry(&["select-steps", "--strategy", "FROM_ASSET_FAILURE", "-"], &t4);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let selection = stdout_json(&output);
    assert_eq!(selection["asset_check_selection"].as_array().unwrap().len(), 2, "{selection}");
    assert_eq!(selection["steps"], serde_json::json!(["a1_blocking_downstream", "blocking_checked"]));
    // The same run on an op job's terms (its asset data dropped) has nothing to re-execute.
    let mut op_job: serde_json::Value = serde_json::from_str(&t4).unwrap();
    for step in op_job["run"]["steps"].as_array_mut().unwrap() {
        for field in ["assets", "checks", "required_keys", "blocking_checks"] {
            step.as_object_mut().unwrap().remove(field);
        }
    }
    let output = runretry(&["select-steps", "--strategy", "FROM_ASSET_FAILURE", "-"], &op_job.to_string());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout_json(&output)["error"].as_str().unwrap().contains("No assets or asset checks"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn batch_answers_every_line_in_order_and_reports_bad_lines() {
    let input = format!("{}\n{{\"run\": 42}}\n\n{}\n", one_line("01"), one_line("06"));
    let output = runretry(&["decide", "--batch", "-"], &input);
    assert_eq!(output.status.code(), Some(2), "a bad line makes the exit code 2 after all lines");
    let lines: Vec<serde_json::Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "blank lines are skipped, every other line answered");
    assert_eq!(lines[0]["action"], "LAUNCH_NEW");
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("<stdin>:2"), "{}", lines[1]);
    assert_eq!(lines[2]["strategy"], "ALL_STEPS");
}

#[test]
fn on_policy_error_covers_a_policy_that_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let core_module = dir.path().join("core.wasm");
    std::fs::write(&core_module, b"\0asm\x01\0\0\0").unwrap();
    let policy = core_module.to_str().unwrap();
    // A policy that cannot even load is a policy failure like any other...
    let output = runretry(&["decide", "--policy", policy, &example("01")], "");
    assert_eq!(output.status.code(), Some(3));
    // ...which give-up turns into "no retry", saying why...
    let output = runretry(&["decide", "--policy", policy, "--on-policy-error", "give-up", &example("01")], "");
    assert_eq!(output.status.code(), Some(0));
    let decision = stdout_json(&output);
    assert_eq!(decision["action"], "NONE");
    let event = decision["events"][0].as_str().unwrap();
    assert!(event.contains("invalid policy component"), "{decision}");
    assert_eq!(event.matches("invalid policy component").count(), 1, "the kind is said once: {event}");
    // ...and default turns into the default policy's decision.
    let output = runretry(&["decide", "--policy", policy, "--on-policy-error", "default", &example("01")], "");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout_json(&output)["action"], "LAUNCH_NEW");
}

/// A case on one line, for `--batch`.
fn one_line(name: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(example(name)).unwrap()).unwrap();
    serde_json::to_string(&value).unwrap()
}

/// A guest sleeping an hour fails fast in decide, select-steps and every line of a batch, and
/// the default fallback decides instead (each used to hold the command for the hour).
#[test]
fn a_sleeping_guest_holds_no_command() {
    let sleeper = runretry_test_guests::hostile("sleep_an_hour");
    let limits = ["--policy", sleeper, "--deadline-ms", "500"];
    let started = std::time::Instant::now();
    let output = runretry(&[&["decide"], &limits[..], &[&example("01")]].concat(), "");
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("deadline of 500 ms"), "{}", stderr(&output));
    let output = runretry(&[&["select-steps", "--strategy", "ALL_STEPS"], &limits[..], &[&example("01")]].concat(), "");
    assert_eq!(output.status.code(), Some(3));
    let batch = format!("{}\n{}\n{}\n", one_line("01"), one_line("06"), one_line("01"));
    let output = runretry(&[&["decide", "--batch", "-"], &limits[..]].concat(), &batch);
    assert_eq!(output.status.code(), Some(3));
    let answers = String::from_utf8(output.stdout).unwrap();
    assert_eq!(answers.lines().filter(|l| l.contains("deadline exceeded")).count(), 3, "{answers}");
    let output = runretry(&[&["decide", "--on-policy-error", "default"], &limits[..], &[&example("01")]].concat(), "");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout_json(&output)["action"], "LAUNCH_NEW");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
}

/// `decide --batch -` answers each line as soon as it has read it: an orchestrator that writes
/// one case and waits for its answer must not deadlock.
#[test]
fn batch_answers_each_line_before_the_next_arrives() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_runretry"))
        .args(["decide", "--batch", "-"])
        .env("RUNRETRY_CACHE", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let (sender, answers) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = sender.send(line.unwrap());
        }
    });
    for name in ["01", "06"] {
        writeln!(input, "{}", one_line(name)).unwrap();
        input.flush().unwrap();
        // stdin stays open: the answer must come anyway.
        let answer = answers.recv_timeout(std::time::Duration::from_secs(60)).expect("an answer per line, at once");
        assert!(answer.contains("\"action\""), "{answer}");
    }
    drop(input);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
}

/// `runretry decide ... | head -1`: a reader that leaves early ends the command quietly.
#[test]
fn a_closed_stdout_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runretry"))
        .args(["decide", &example("01")])
        .env("RUNRETRY_CACHE", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    assert_eq!(output.status.code(), Some(0));
}

/// The CLI prints what really went wrong, and never raw terminal control codes from a guest.
#[test]
fn errors_name_their_root_cause_and_guest_text_is_escaped() {
    let output = runretry(&["decide", "--policy", runretry_test_guests::hostile("exit_zero"), &example("01")], "");
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("the policy called exit(0)"), "{}", stderr(&output));
    let output = runretry(&["decide", "--policy", runretry_test_guests::hostile("random_huge"), &example("01")], "");
    assert!(stderr(&output).contains("asked for 1099511627776 random bytes"), "{}", stderr(&output));
    let output = runretry(&["decide", "--policy", runretry_test_guests::hostile("escape_stderr"), &example("01")], "");
    let text = stderr(&output);
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert_eq!(text.lines().count(), 1, "one line, no forged log line: {text}");
}

/// `--jobs N` decides on N threads and still answers every line in input order, exactly as one
/// thread does.
#[test]
fn batch_on_many_threads_answers_in_input_order() {
    let names = ["01", "06", "04", "09", "10", "05"];
    let mut input = String::new();
    for i in 0..60 {
        match i % 7 {
            3 => input.push_str("{\"run\": 42}\n"),
            5 => input.push('\n'),
            _ => input.push_str(&(one_line(names[i % names.len()]) + "\n")),
        }
    }
    let one = runretry(&["decide", "--batch", "-", "--jobs", "1"], &input);
    let four = runretry(&["decide", "--batch", "-", "--jobs", "4"], &input);
    assert_eq!(one.status.code(), Some(2));
    assert_eq!(four.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&four.stdout), String::from_utf8_lossy(&one.stdout));
    let blank = (0..60).filter(|i| i % 7 == 5).count();
    assert_eq!(String::from_utf8_lossy(&one.stdout).lines().count(), 60 - blank);
}

/// Issue #31: a packed answer whose tag map header claims 2^32-1 entries made the host print
/// "memory allocation of 206158430160 bytes failed" and abort (exit 134) through `decide` in
/// every mode, `--batch` (no line answered) and `conformance`. Now it is invalid output, and
/// every path goes on as documented.
#[test]
fn a_lying_packed_header_aborts_no_command() {
    let liar = runretry_test_guests::hostile("packed_map_header");
    let output = runretry(&["decide", "--policy", liar, &example("01")], "");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("invalid policy output"), "{}", stderr(&output));
    let output = runretry(&["decide", "--policy", liar, "--on-policy-error", "give-up", &example("01")], "");
    assert_eq!((output.status.code(), stdout_json(&output)["action"].as_str()), (Some(0), Some("NONE")));
    let output = runretry(&["decide", "--policy", liar, "--on-policy-error", "default", &example("01")], "");
    assert_eq!((output.status.code(), stdout_json(&output)["action"].as_str()), (Some(0), Some("LAUNCH_NEW")));
    let batch = [one_line("01"), one_line("06"), one_line("01"), one_line("06"), one_line("01")].join("\n");
    let output = runretry(&["decide", "--batch", "-", "--policy", liar], &batch);
    assert_eq!(output.status.code(), Some(3));
    let answers = String::from_utf8(output.stdout).unwrap();
    assert_eq!(answers.lines().filter(|l| l.contains("invalid policy output")).count(), 5, "{answers}");
    let output = runretry(&["conformance", "--policy", liar], "");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

/// Issue #31: a guest's error, and its refusals, were printed whole (a 3-line batch wrote
/// 157 MB). The guest's text is cut to 4 KiB wherever it goes (10 MiB here, under the cap).
#[test]
fn a_guests_huge_text_is_clipped_on_every_output() {
    let shouter = runretry_test_guests::hostile("packed_huge_error");
    let output = runretry(&["decide", "--policy", shouter, &example("01")], "");
    assert_eq!(output.status.code(), Some(3));
    assert!(output.stderr.len() < 10_000, "{} bytes on stderr", output.stderr.len());
    assert!(stderr(&output).contains("more bytes cut]"), "{}", stderr(&output));
    let batch = [one_line("01"), one_line("06"), one_line("01")].join("\n");
    let output = runretry(&["decide", "--batch", "-", "--policy", shouter], &batch);
    assert!(output.stdout.len() < 30_000, "{} bytes on stdout", output.stdout.len());
    for refuser in [shouter, runretry_test_guests::hostile("huge_refusal")] {
        let output = runretry(&["select-steps", "--strategy", "ALL_STEPS", "--policy", refuser, &example("01")], "");
        assert_eq!(output.status.code(), Some(1), "{refuser}: {}", stderr(&output));
        assert!(output.stdout.len() < 10_000, "{refuser}: {} bytes on stdout", output.stdout.len());
        assert!(stdout_json(&output)["error"].as_str().unwrap().ends_with("more bytes cut]"), "{refuser}");
    }
}

/// Issue #30 (what a new user met): `--deadline-ms 0` was accepted, and every decision then
/// timed out. A zero limit is bad input, named as the flag is spelt, whatever the command.
#[test]
fn a_zero_limit_is_refused_naming_the_flag() {
    for (flag, value) in [("--deadline-ms", "0"), ("--fuel", "0"), ("--max-output-bytes", "0")] {
        let output = runretry(&["decide", flag, value, &example("01")], "");
        assert_eq!(output.status.code(), Some(2), "{flag}: {}", stderr(&output));
        assert!(stderr(&output).contains(&format!("({flag}) is 0")), "{}", stderr(&output));
    }
    let output = runretry(&["decide", "--deadline-ms", "1000", &example("01")], "");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// Issue #30 (what a new user met): `--help` listed no exit codes.
#[test]
fn help_lists_the_exit_codes() {
    let help = String::from_utf8(runretry(&["--help"], "").stdout).unwrap();
    for code in ["0 answered", "1 the policy refused", "2 bad usage or input", "3 the policy failed"] {
        assert!(help.contains(code), "{code:?} missing from:\n{help}");
    }
}

/// Issue #30 (what a new user met): `--help` showed no defaults for the sandbox limits, and
/// `serve --help` said "exit 3". Every command with a sandbox shows each knob's default, as
/// the core declares it.
#[test]
fn help_shows_each_limit_with_its_default() {
    for command in ["decide", "select-steps", "conformance", "serve", "replay", "inspect"] {
        let help = String::from_utf8(runretry(&[command, "--help"], "").stdout).unwrap();
        for knob in &runretry::LIMIT_KNOBS {
            // The flag's entry: its line, and its help on the next when clap wraps.
            let at = help.lines().position(|line| line.trim_start().starts_with(&knob.flag()));
            let at = at.unwrap_or_else(|| panic!("{command} --help has no {}:\n{help}", knob.flag()));
            let entry: Vec<&str> = help.lines().skip(at).take(2).collect();
            let entry = entry.join(" ");
            assert!(
                entry.contains(&format!("{} [default: {}]", knob.help, knob.default_value())),
                "{command}: {entry}"
            );
        }
    }
    let serve = String::from_utf8(runretry(&["serve", "--help"], "").stdout).unwrap();
    assert!(serve.contains("serve: HTTP 500"), "{serve}");
}

/// Issue #30 (what a new user met): the docs' example policies (`circuit_breaker_policy.wasm`,
/// `backoff_policy.wasm`) were out of a wheel user's reach. `runretry example` writes them:
/// the same component the tests build from `examples/`, and a valid policy.
#[test]
fn example_writes_the_policies_the_docs_use() {
    let list = String::from_utf8(runretry(&["example", "--list"], "").stdout).unwrap();
    for name in ["asset-pattern", "backoff", "circuit-breaker", "infra-only", "permanent-errors", "retry-budget"] {
        assert!(list.lines().any(|line| line.starts_with(name)), "{name} missing from:\n{list}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backoff_policy.wasm");
    let output = runretry(&["example", "backoff", "-o", out.to_str().unwrap()], "");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let written = std::fs::read(&out).unwrap();
    assert_eq!(written, std::fs::read(runretry_test_guests::example_policy("backoff_policy")).unwrap());
    let decided = runretry(&["decide", "--policy", out.to_str().unwrap(), &example("01")], "");
    assert_eq!(decided.status.code(), Some(0), "{}", stderr(&decided));

    let unknown = runretry(&["example", "nope", "-o", out.to_str().unwrap()], "");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("the examples are asset-pattern, backoff"), "{}", stderr(&unknown));
}

/// Each Dagster release gets its own decision through the sandboxed default policy, and a case
/// holding what its release cannot have is refused naming the field (docs/dagster-semantics.md §12.1).
#[test]
fn each_release_gets_its_own_decision() {
    // Every step succeeded, then the run failed (a crash after its last step).
    let case = serde_json::json!({
        "config": {"enabled": true, "max_retries": 2},
        "run": {"run_id": "r", "status": "FAILURE", "tags": {},
                "steps": [{"key": "a", "upstream": [], "status": "SUCCESS"}]},
        "failure": {"reason": "RUN_EXCEPTION"}
    })
    .to_string();
    let decide = |version: &str| {
        let output = runretry(&["decide", "-", "--dagster-version", version], &case);
        assert_eq!(output.status.code(), Some(0), "{version}: {}", stderr(&output));
        stdout_json(&output)
    };
    // From 1.11.3 nothing to re-run is an error; before, the retry is launched with no steps.
    let newest = decide("1.13.29");
    assert_eq!(newest["action"], "NONE", "{newest}");
    assert_eq!(newest["failed_run_tags"]["dagster/will_retry"], "false", "{newest}");
    let older = decide("1.11.2");
    assert_eq!((older["action"].as_str(), &older["steps"]), (Some("LAUNCH_NEW"), &serde_json::json!([])), "{older}");

    let mut failing: serde_json::Value = serde_json::from_str(&case).unwrap();
    failing["run"]["tags"]["dagster/backfill"] = "bf".into();
    failing["run"]["backfill"] = serde_json::json!({"id": "bf", "exists": true, "status": "FAILING"});
    let output = runretry(&["decide", "-", "--dagster-version", "1.11.10"], &failing.to_string());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run.backfill.status: FAILING first exists in Dagster 1.11.11"),
        "{}",
        stderr(&output)
    );
    let output = runretry(&["decide", "-", "--dagster-version", "1.11.11"], &failing.to_string());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
