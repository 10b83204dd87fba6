//! What a conformance case expects (case-format §4), compared with an answer: one comparison
//! for every runner (the host's conformance kit, the default policy's native suite).
//!
//! Absent or null fields are not checked. `will_retry_tag` is the failed run's final
//! `dagster/will_retry`; `engine_event` must be among the events; step, asset and check lists
//! compare sorted.

use serde_json::{json, Map, Value};

use crate::model::{tag, Decision, Run, SelectionAnswer};
use crate::task::TaskDecision;

fn differ(field: &str, expected: &Value, got: &Value) -> Option<String> {
    (expected != got).then(|| format!("{field}: expected {expected}, got {got}"))
}

/// Every difference between `decision` (the answer for a case about `run`) and `expect`, one
/// `field: expected X, got Y` each; fields named in `ignore` are not compared.
pub fn compare_decision(run: &Run, decision: &Decision, expect: &Map<String, Value>, ignore: &[String]) -> Vec<String> {
    let mut sorted = decision.clone();
    for list in [&mut sorted.steps, &mut sorted.asset_selection, &mut sorted.asset_check_selection] {
        if let Some(list) = list.as_mut() {
            list.sort();
        }
    }
    let got = serde_json::to_value(&sorted).expect("decisions serialise");
    let mut differences = Vec::new();
    for (field, expected) in expect {
        if expected.is_null() || ignore.iter().any(|i| i == field) {
            continue;
        }
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

/// Every difference between a task decision and `expect`: `action`, `delay_seconds` (exact;
/// null means none), `reason`, `reason_contains` (a part of the reason) and `event` (one of the
/// events).
pub fn compare_task_decision(decision: &TaskDecision, expect: &Map<String, Value>, ignore: &[String]) -> Vec<String> {
    let mut differences = Vec::new();
    for (field, expected) in expect {
        if ignore.iter().any(|i| i == field) {
            continue;
        }
        let difference = match field.as_str() {
            "action" => differ(field, expected, &json!(decision.action)),
            "delay_seconds" => differ(field, expected, &json!(decision.delay_seconds)),
            "reason" => differ(field, expected, &json!(decision.reason)),
            "reason_contains" => {
                let part = expected.as_str().unwrap_or_default();
                (!decision.reason.contains(part))
                    .then(|| format!("reason: expected to contain {expected}, got {:?}", decision.reason))
            }
            "event" => {
                let wanted = expected.as_str().unwrap_or_default();
                (!decision.events.iter().any(|e| e == wanted))
                    .then(|| format!("event: expected {expected} among events {:?}", decision.events))
            }
            other => Some(format!("{other}: not a task decision field")),
        };
        differences.extend(difference);
    }
    differences
}

/// Every difference between `answer` and `expect` (`strategy`, `steps`, `asset_selection`,
/// `asset_check_selection`, `error`).
pub fn compare_selection(answer: &SelectionAnswer, expect: &Map<String, Value>, ignore: &[String]) -> Vec<String> {
    let mut differences = Vec::new();
    let checked = |field: &str| expect.get(field).filter(|v| !v.is_null() && !ignore.iter().any(|i| i == field));
    let strategy = match answer {
        SelectionAnswer::Selected { strategy, selection } => {
            let sorted = |list: &[String]| {
                let mut list = list.to_vec();
                list.sort();
                list
            };
            let steps = sorted(&selection.steps);
            if let Some(expected) = checked("error") {
                differences.push(format!("error: expected {expected}, got steps {steps:?}"));
            }
            for (field, got) in [
                ("steps", Some(steps)),
                ("asset_selection", selection.asset_selection.as_deref().map(sorted)),
                ("asset_check_selection", selection.asset_check_selection.as_deref().map(sorted)),
            ] {
                if let Some(expected) = checked(field) {
                    differences.extend(differ(field, expected, &json!(got)));
                }
            }
            strategy
        }
        SelectionAnswer::Refused { strategy, error } => {
            match checked("error") {
                Some(expected) => differences.extend(differ("error", expected, &json!(error))),
                None => differences.push(format!("error: expected a selection, got refusal {error:?}")),
            }
            strategy
        }
    };
    if let Some(expected) = checked("strategy") {
        differences.extend(differ("strategy", expected, &json!(strategy)));
    }
    differences
}
