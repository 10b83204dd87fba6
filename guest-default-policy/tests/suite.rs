//! The default conformance suite, run natively: every case file under `tests/conformance/`
//! against the library, with no Wasm in the way. A case is read with the kit's case format, as
//! the host reads it, and the answer is compared with `expect` as the host's runner does
//! (`host/src/conformance.rs`). The whole suite takes milliseconds, which makes it the oracle for
//! mutation testing (docs/mutation-testing.md).
//!
//! Not mirrored: the host's checks of a decision's shape (`host/src/validate.rs`), which turn a
//! malformed decision into a policy failure rather than a field difference.

use std::path::{Path, PathBuf};

use runretry_default_policy::DefaultPolicy;
use runretry_kit::{compare_decision, compare_selection, Case, Policy, SelectionAnswer, Strategy};
use serde_json::{Map, Value};

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

/// Run one case through `DefaultPolicy`, what the component exports; the differences from
/// `expect` (none when it passes).
fn check(case: &Value) -> Result<Vec<String>, String> {
    let input = Case::from_json("case", &case.to_string()).map_err(|e| e.to_string())?;
    let expect = match case.get("expect") {
        Some(Value::Object(map)) => map.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err("expect: must be an object".into()),
    };
    match case.get("kind").and_then(Value::as_str) {
        Some("should_retry") | None => {
            let decision = DefaultPolicy::should_retry(&input.run, &input.failure, &input.config);
            Ok(compare_decision(&input.run, &decision, &expect, &[]))
        }
        Some("select_steps") => {
            let strategy: Strategy =
                serde_json::from_value(case.pointer("/input/strategy").cloned().unwrap_or_default())
                    .map_err(|e| format!("input.strategy: {e}"))?;
            let selection = match DefaultPolicy::select_steps(&input.run, strategy) {
                Ok(selection) => SelectionAnswer::Selected { strategy, selection },
                Err(error) => SelectionAnswer::Refused { strategy, error },
            };
            Ok(compare_selection(&selection, &expect, &[]))
        }
        Some(other) => Err(format!("kind: {other:?} is neither should_retry nor select_steps")),
    }
}
