//! How two decisions for one case differ: a table of change kinds (adding a kind is one line),
//! and the run, step and delay arithmetic the report sums. A task decision (Airflow) changes in
//! three of the same kinds: `retry`, `action` and `delay`.

use std::collections::BTreeSet;

use runretry_kit::{Action, AnyCase, Decision, Tags, TaskAction, TaskCase, TaskDecision};
use serde_json::Value;

use super::ReplayAnswer;

/// One way a decision can change.
pub struct ChangeKind {
    /// The name reports use.
    pub name: &'static str,
    /// The decision's JSON fields this kind compares (the rest are compared as `other`).
    pub fields: &'static [&'static str],
    /// True when the candidate's decision differs from the baseline's in this way.
    pub changed: fn(&Decision, &Decision) -> bool,
}

/// Every named kind of change, in report order. A decision may change in several ways at once.
pub static CHANGE_KINDS: &[ChangeKind] = &[
    ChangeKind { name: "retry", fields: &["retry"], changed: |a, b| a.retry() != b.retry() },
    ChangeKind { name: "action", fields: &["action"], changed: |a, b| a.action != b.action },
    ChangeKind { name: "strategy", fields: &["strategy"], changed: |a, b| a.strategy != b.strategy },
    ChangeKind { name: "steps", fields: &["steps"], changed: |a, b| step_set(a) != step_set(b) },
    ChangeKind { name: "retry_number", fields: &["retry_number"], changed: |a, b| a.retry_number != b.retry_number },
    ChangeKind {
        name: "assets",
        fields: &["asset_selection", "asset_check_selection"],
        changed: |a, b| a.asset_selection != b.asset_selection || a.asset_check_selection != b.asset_check_selection,
    },
    ChangeKind { name: "tags", fields: &["new_run_tags", "failed_run_tags"], changed: tags_changed },
    ChangeKind { name: "delay", fields: &["delay_seconds"], changed: |a, b| a.delay_seconds != b.delay_seconds },
    ChangeKind {
        name: "resubmit",
        fields: &["resubmit_run_id"],
        changed: |a, b| a.resubmit_run_id != b.resubmit_run_id,
    },
];

/// Free text, never a change of decision.
const FREE_TEXT: &[&str] = &["events", "reason"];

/// A change in a field no kind above names (a field added to the contract later); found by
/// comparing the decisions as JSON (serde: every field), without the named kinds' fields and the
/// free text of `events` and `reason`.
pub const OTHER: &str = "other";
/// One side failed and the other answered.
pub const ERROR: &str = "error";

/// The difference between the candidate's and the baseline's answers to one case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Difference {
    /// The kinds of change, in [`CHANGE_KINDS`] order; empty when nothing changed.
    pub kinds: Vec<&'static str>,
    /// The candidate starts a run (launch or resubmit) that the baseline did not.
    pub extra_run: bool,
    /// The baseline started a run that the candidate does not.
    pub avoided_run: bool,
    /// Steps the candidate re-executes that the baseline did not.
    pub extra_steps: usize,
    /// Steps the baseline re-executed that the candidate does not.
    pub fewer_steps: usize,
    /// The candidate's delay minus the baseline's (a delay counts only when a run starts).
    pub added_delay_seconds: f64,
}

/// Compare two answers to `case`; an `Err` is a failed policy, named by its error kind.
pub fn compare_answers(
    case: &AnyCase,
    candidate: Result<&ReplayAnswer, &str>,
    baseline: Result<&ReplayAnswer, &str>,
) -> Difference {
    match (case, candidate, baseline) {
        (AnyCase::Run(_), Ok(ReplayAnswer::Run(candidate)), Ok(ReplayAnswer::Run(baseline))) => {
            compare_decisions(candidate, baseline)
        }
        (AnyCase::Task(task), Ok(ReplayAnswer::Task(candidate)), Ok(ReplayAnswer::Task(baseline))) => {
            compare_task_decisions(task, candidate, baseline)
        }
        (_, Err(a), Err(b)) if a == b => Difference::default(),
        // An error on one side only; an answer of the other kind cannot come from deciding.
        _ => Difference { kinds: vec![ERROR], ..Difference::default() },
    }
}

fn compare_task_decisions(task: &TaskCase, candidate: &TaskDecision, baseline: &TaskDecision) -> Difference {
    let (cand_retries, base_retries) = (task_retries(task, candidate), task_retries(task, baseline));
    let kinds = [
        ("retry", cand_retries != base_retries),
        ("action", candidate.action != baseline.action),
        ("delay", candidate.delay_seconds != baseline.delay_seconds),
    ];
    Difference {
        kinds: kinds.iter().filter(|(_, changed)| *changed).map(|(name, _)| *name).collect(),
        extra_run: cand_retries && !base_retries,
        avoided_run: base_retries && !cand_retries,
        added_delay_seconds: task_delay(task, candidate) - task_delay(task, baseline),
        ..Difference::default()
    }
}

/// Whether Airflow tries the task again on this answer: `retry` and `default` (its standard
/// retries; the replay has replaced it by Airflow's decision where it could) do while retries
/// remain; a policy cannot add retries.
fn task_retries(task: &TaskCase, decision: &TaskDecision) -> bool {
    decision.action != TaskAction::Fail && task.retries_remain()
}

/// The wait before the next try, when there is one. `default` waits Airflow's own delay, which
/// the host does not compute (backoff and jitter are Airflow's): it counts as none.
fn task_delay(task: &TaskCase, decision: &TaskDecision) -> f64 {
    match decision.action {
        TaskAction::Retry if task.retries_remain() => {
            decision.delay_seconds.unwrap_or(task.settings.retry_delay_seconds)
        }
        _ => 0.0,
    }
}

fn compare_decisions(candidate: &Decision, baseline: &Decision) -> Difference {
    let mut kinds: Vec<&'static str> =
        CHANGE_KINDS.iter().filter(|kind| (kind.changed)(candidate, baseline)).map(|kind| kind.name).collect();
    if unnamed_fields(candidate) != unnamed_fields(baseline) {
        kinds.push(OTHER);
    }
    let (cand_steps, base_steps) = (run_steps(candidate), run_steps(baseline));
    Difference {
        kinds,
        extra_run: starts_run(candidate) && !starts_run(baseline),
        avoided_run: starts_run(baseline) && !starts_run(candidate),
        extra_steps: cand_steps.difference(&base_steps).count(),
        fewer_steps: base_steps.difference(&cand_steps).count(),
        added_delay_seconds: delay(candidate) - delay(baseline),
    }
}

fn starts_run(decision: &Decision) -> bool {
    decision.action != Action::None
}

/// The steps a decision re-executes: none unless it launches a run.
fn run_steps(decision: &Decision) -> BTreeSet<&str> {
    match (&decision.steps, decision.retry()) {
        (Some(steps), true) => steps.iter().map(String::as_str).collect(),
        _ => BTreeSet::new(),
    }
}

fn step_set(decision: &Decision) -> Option<BTreeSet<&str>> {
    decision.steps.as_ref().map(|steps| steps.iter().map(String::as_str).collect())
}

fn delay(decision: &Decision) -> f64 {
    if starts_run(decision) {
        decision.delay_seconds
    } else {
        0.0
    }
}

/// Tag maps compared as sets (order carries no meaning for Dagster's tags).
fn tags_changed(a: &Decision, b: &Decision) -> bool {
    fn set(tags: &Tags) -> BTreeSet<(&str, &str)> {
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
    set(&a.new_run_tags) != set(&b.new_run_tags) || set(&a.failed_run_tags) != set(&b.failed_run_tags)
}

/// The decision as JSON (serde: every field, including ones added later), minus the fields the
/// named kinds compare and the free text.
fn unnamed_fields(decision: &Decision) -> Value {
    let mut value = serde_json::to_value(decision).expect("decisions serialise");
    if let Value::Object(map) = &mut value {
        for field in CHANGE_KINDS.iter().flat_map(|kind| kind.fields).chain(FREE_TEXT) {
            map.remove(*field);
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use runretry_kit::Strategy;

    /// Compare two run decisions (or errors) as the replay does.
    fn compare_runs(candidate: Result<&Decision, &str>, baseline: Result<&Decision, &str>) -> Difference {
        let case = runretry_kit::Case::from_json("test", r#"{"run": {"run_id": "r", "status": "FAILURE"}}"#).unwrap();
        let case = AnyCase::Run(case);
        let (candidate, baseline) =
            (candidate.map(|d| ReplayAnswer::Run(d.clone())), baseline.map(|d| ReplayAnswer::Run(d.clone())));
        compare_answers(&case, candidate.as_ref().map_err(|e| *e), baseline.as_ref().map_err(|e| *e))
    }

    fn launch(steps: &[&str], delay: f64) -> Decision {
        Decision {
            action: Action::LaunchNew,
            retry_number: Some(1),
            strategy: Some(Strategy::FromFailure),
            steps: Some(steps.iter().map(|s| s.to_string()).collect()),
            delay_seconds: delay,
            ..Decision::none("retry")
        }
    }

    #[test]
    fn same_decisions_with_other_words_do_not_differ() {
        let a = Decision { reason: "one way".into(), events: vec!["x".into()], ..launch(&["a", "b"], 0.0) };
        let b = Decision { reason: "another".into(), ..launch(&["b", "a"], 0.0) };
        assert_eq!(compare_runs(Ok(&a), Ok(&b)), Difference::default());
    }

    #[test]
    fn a_new_retry_is_an_extra_run_with_its_steps_and_delay() {
        let candidate = launch(&["a", "b"], 30.0);
        let baseline = Decision::none("no");
        let d = compare_runs(Ok(&candidate), Ok(&baseline));
        assert_eq!(d.kinds, ["retry", "action", "strategy", "steps", "retry_number", "delay"]);
        assert!(d.extra_run && !d.avoided_run);
        assert_eq!((d.extra_steps, d.fewer_steps, d.added_delay_seconds), (2, 0, 30.0));
        let back = compare_runs(Ok(&baseline), Ok(&candidate));
        assert!(back.avoided_run && !back.extra_run);
        assert_eq!((back.extra_steps, back.fewer_steps, back.added_delay_seconds), (0, 2, -30.0));
    }

    #[test]
    fn each_kind_is_named_alone() {
        let base = launch(&["a"], 0.0);
        let steps = launch(&["a", "b"], 0.0);
        assert_eq!(compare_runs(Ok(&steps), Ok(&base)).kinds, ["steps"]);
        let delayed = launch(&["a"], 5.0);
        assert_eq!(compare_runs(Ok(&delayed), Ok(&base)).kinds, ["delay"]);
        let tagged = Decision { new_run_tags: vec![("k".into(), "v".into())], ..launch(&["a"], 0.0) };
        assert_eq!(compare_runs(Ok(&tagged), Ok(&base)).kinds, ["tags"]);
        let numbered = Decision { retry_number: Some(2), ..launch(&["a"], 0.0) };
        assert_eq!(compare_runs(Ok(&numbered), Ok(&base)).kinds, ["retry_number"]);
    }

    /// Every field of a decision is compared by a named kind, or is free text: `other` stays
    /// for fields added later. A field added to `Decision` fails this test until it is named.
    #[test]
    fn every_decision_field_is_named_or_free_text() {
        let value = serde_json::to_value(launch(&["a"], 0.0)).unwrap();
        let named: Vec<&str> = CHANGE_KINDS.iter().flat_map(|kind| kind.fields).chain(FREE_TEXT).copied().collect();
        let unnamed: Vec<&String> =
            value.as_object().unwrap().keys().filter(|k| !named.contains(&k.as_str())).collect();
        assert!(unnamed.is_empty(), "decision fields no kind compares: {unnamed:?} (add a line to CHANGE_KINDS)");
    }

    #[test]
    fn errors_differ_from_answers_and_from_other_errors() {
        let base = launch(&["a"], 0.0);
        assert_eq!(compare_runs(Err("guest trap"), Ok(&base)).kinds, [ERROR]);
        assert_eq!(compare_runs(Ok(&base), Err("guest trap")).kinds, [ERROR]);
        assert_eq!(compare_runs(Err("guest trap"), Err("guest trap")).kinds, Vec::<&str>::new());
        assert_eq!(compare_runs(Err("guest trap"), Err("fuel exhausted")).kinds, [ERROR]);
    }

    fn task(try_number: u32, max_tries: u32) -> TaskCase {
        let error = runretry_kit::ExceptionInfo::new("builtins.ValueError", "bad");
        let mut task = TaskCase::new("dag", "task", "run", try_number, max_tries, error);
        task.settings.retry_delay_seconds = 300.0;
        task
    }

    fn answer(action: TaskAction, delay_seconds: Option<f64>) -> TaskDecision {
        TaskDecision { action, delay_seconds, reason: "why".into(), events: Vec::new() }
    }

    fn compare_tasks(task: &TaskCase, candidate: &TaskDecision, baseline: &TaskDecision) -> Difference {
        let case = AnyCase::Task(task.clone());
        let (candidate, baseline) = (ReplayAnswer::Task(candidate.clone()), ReplayAnswer::Task(baseline.clone()));
        compare_answers(&case, Ok(&candidate), Ok(&baseline))
    }

    #[test]
    fn a_task_failed_at_once_is_an_avoided_try_and_its_delay() {
        let d = compare_tasks(&task(1, 3), &answer(TaskAction::Fail, None), &answer(TaskAction::Retry, Some(60.0)));
        assert_eq!(d.kinds, ["retry", "action", "delay"]);
        assert!(d.avoided_run && !d.extra_run);
        assert_eq!(d.added_delay_seconds, -60.0);
    }

    #[test]
    fn a_task_retry_without_delay_waits_the_tasks_retry_delay() {
        let d = compare_tasks(&task(1, 3), &answer(TaskAction::Retry, None), &answer(TaskAction::Retry, Some(60.0)));
        assert_eq!(d.kinds, ["delay"]);
        assert_eq!(d.added_delay_seconds, 240.0);
    }

    #[test]
    fn default_retries_while_retries_remain_and_the_last_try_retries_nothing() {
        let d = compare_tasks(&task(1, 3), &answer(TaskAction::Default, None), &answer(TaskAction::Retry, Some(60.0)));
        assert_eq!(d.kinds, ["action", "delay"]);
        assert!(!d.extra_run && !d.avoided_run);
        let last = compare_tasks(&task(4, 3), &answer(TaskAction::Retry, Some(9.0)), &answer(TaskAction::Fail, None));
        assert_eq!(last.kinds, ["action", "delay"]);
        assert!(!last.extra_run && last.added_delay_seconds == 0.0, "Airflow retries nothing past max_tries");
    }

    /// Every field of a task decision: compared (`action`, `delay_seconds`) or free text.
    const TASK_DECISION_FIELDS: &[&str] = &["action", "delay_seconds", "reason", "events"];

    /// As for run decisions: a field added to `TaskDecision` fails this test until it is compared.
    #[test]
    fn every_task_decision_field_is_compared_or_free_text() {
        let value = serde_json::to_value(answer(TaskAction::Retry, Some(1.0))).unwrap();
        let unnamed: Vec<&String> =
            value.as_object().unwrap().keys().filter(|k| !TASK_DECISION_FIELDS.contains(&k.as_str())).collect();
        assert!(unnamed.is_empty(), "task decision fields replay does not compare: {unnamed:?}");
    }
}
