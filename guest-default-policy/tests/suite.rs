//! The default conformance suite, run natively: every case file under `tests/conformance/`
//! against the library, with no Wasm in the way. A case is read with the kit's case format, as
//! the host reads it, and the answer is compared with `expect` as the host's runner does
//! (`host/src/conformance.rs`). The whole suite takes milliseconds, which makes it the oracle for
//! mutation testing (docs/mutation-testing.md).
//!
//! Not mirrored: the host's checks of a decision's shape (`host/src/validate.rs`), which turn a
//! malformed decision into a policy failure rather than a field difference.

use std::path::{Path, PathBuf};

use runretry_default_policy::{select_steps, should_retry};
use runretry_kit::{tag, Case, Decision, Run, Strategy};
use serde_json::{json, Map, Value};

type Expect = Map<String, Value>;

#[test]
fn default_suite_passes_natively() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
    let mut files = Vec::new();
    collect_json_files(&root, &mut files);
    files.sort();
    let (mut checked, mut failures) = (0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (cases, listed) = match value {
            Value::Array(items) => (items, true),
            single => (vec![single], false),
        };
        for (i, case) in cases.iter().enumerate() {
            checked += 1;
            let differences = check(case).unwrap_or_else(|e| vec![format!("bad case: {e}")]);
            if !differences.is_empty() {
                let path = file.strip_prefix(&root).unwrap_or(file).display();
                let source = if listed { format!("{path}[{i}]") } else { path.to_string() };
                let name = case["name"].as_str().unwrap_or("(unnamed)");
                failures.push(format!("FAIL {name} ({source}): {}", differences.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked > 150, "only {checked} cases under {}: is the suite there?", root.display());
}

fn collect_json_files(path: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let child = entry.unwrap().path();
        if child.is_dir() {
            collect_json_files(&child, files);
        } else if child.extension().is_some_and(|x| x == "json") {
            files.push(child);
        }
    }
}

/// Run one case; the differences from `expect` (none when it passes).
fn check(case: &Value) -> Result<Vec<String>, String> {
    let input = Case::from_json("case", &case.to_string()).map_err(|e| e.to_string())?;
    let expect = match case.get("expect") {
        Some(Value::Object(map)) => map.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err("expect: must be an object".into()),
    };
    match case.get("kind").and_then(Value::as_str) {
        Some("should_retry") | None => {
            let decision = should_retry(&input.run, &input.failure, &input.config);
            Ok(compare_decision(&input.run, &decision, &expect))
        }
        Some("select_steps") => {
            let strategy: Strategy =
                serde_json::from_value(case.pointer("/input/strategy").cloned().unwrap_or_default())
                    .map_err(|e| format!("input.strategy: {e}"))?;
            Ok(compare_selection(strategy, select_steps(&input.run, strategy), &expect))
        }
        Some(other) => Err(format!("kind: {other:?} is neither should_retry nor select_steps")),
    }
}

// ---- Comparison, as host/src/conformance.rs ----

fn differ(field: &str, expected: &Value, got: &Value) -> Option<String> {
    (expected != got).then(|| format!("{field}: expected {expected}, got {got}"))
}

/// Absent or null fields are not checked; `will_retry_tag` is the failed run's final
/// `dagster/will_retry`; `engine_event` must be among the events.
fn compare_decision(run: &Run, decision: &Decision, expect: &Expect) -> Vec<String> {
    let got = decision_json(decision);
    let mut differences = Vec::new();
    for (field, expected) in expect.iter().filter(|(_, v)| !v.is_null()) {
        let difference = match field.as_str() {
            "will_retry_tag" => {
                let key = "dagster/will_retry";
                let final_tag = tag(&decision.failed_run_tags, key).or_else(|| tag(&run.tags, key));
                differ(field, expected, &json!(final_tag))
            }
            "engine_event" => {
                let wanted = expected.as_str().unwrap_or_default();
                (!decision.events.iter().any(|e| e == wanted))
                    .then(|| format!("engine_event: expected {expected} among events {:?}", decision.events))
            }
            "delay_seconds" => (expected.as_f64() != Some(decision.delay_seconds))
                .then(|| format!("delay_seconds: expected {expected}, got {}", decision.delay_seconds)),
            "error" => Some(format!("error: expected {expected}, but a decision was made")),
            other => match got.get(other) {
                Some(value) => differ(other, expected, value),
                None => Some(format!("{other}: not a decision field")),
            },
        };
        differences.extend(difference);
    }
    differences
}

/// A selection against `strategy`, `steps` and `error`.
fn compare_selection(strategy: Strategy, selection: Result<Vec<String>, String>, expect: &Expect) -> Vec<String> {
    let checked = |field: &str| expect.get(field).filter(|v| !v.is_null());
    let mut differences = Vec::new();
    match selection {
        Ok(mut steps) => {
            steps.sort();
            if let Some(expected) = checked("error") {
                differences.push(format!("error: expected {expected}, got steps {steps:?}"));
            }
            if let Some(expected) = checked("steps") {
                differences.extend(differ("steps", expected, &json!(steps)));
            }
        }
        Err(error) => match checked("error") {
            Some(expected) => differences.extend(differ("error", expected, &json!(error))),
            None => differences.push(format!("error: expected a selection, got refusal {error:?}")),
        },
    }
    if let Some(expected) = checked("strategy") {
        differences.extend(differ("strategy", expected, &json!(strategy.as_str())));
    }
    differences
}

/// The decision as the host serialises it (case-format §2), steps sorted.
fn decision_json(d: &Decision) -> Value {
    let mut d = d.clone();
    if let Some(steps) = d.steps.as_mut() {
        steps.sort();
    }
    serde_json::to_value(&d).expect("decisions serialise")
}
