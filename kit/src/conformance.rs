//! Conformance cases as data, and the one runner: the host runs them against a sandboxed
//! component, the default policy's native tests and a policy author's own `cargo test` against
//! a [`Policy`] directly ([`run_native`]).
//!
//! A case file holds one case object or a list of them (`docs/case-format.md` §4): a case plus
//! `name`, `kind` (`should_retry` or `select_steps` with `input.strategy`) and `expect`. A task
//! case (`kind: decide_task`, a `task` and its `expect`) is a [`TaskConformanceCase`]: the run
//! readers pass over it, [`load_task_cases`] and [`run_task_cases`] take it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::{
    compare_decision, compare_selection, compare_task_decision, Case, CaseError, Decision, Policy, Run,
    SelectionAnswer, Strategy, TaskCase, TaskDecision, TaskPolicy,
};

/// What a conformance case asks.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `runretry decide`.
    ShouldRetry,
    /// `runretry select-steps --strategy S`.
    SelectSteps(Strategy),
}

/// One case of a suite: the input, what is asked, and the expected fields.
#[derive(Clone, Debug)]
pub struct ConformanceCase {
    /// The case's `name`.
    pub name: String,
    /// Where it came from (file, and index for files holding a list).
    pub source: String,
    /// What is asked.
    pub kind: Kind,
    /// The input.
    pub case: Case,
    /// The `expect` object: a subset of the decision or selection fields.
    pub expect: Map<String, Value>,
}

/// One failing case and every field that differed.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseFailure {
    /// The case's name.
    pub name: String,
    /// Where it came from.
    pub source: String,
    /// `field: expected X, got Y`, one per difference (or the error that stopped the case).
    pub differences: Vec<String>,
}

impl fmt::Display for CaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FAIL {} ({}): {}", self.name, self.source, self.differences.join("; "))
    }
}

/// The outcome of a suite.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed, in suite order.
    pub failures: Vec<CaseFailure>,
    /// Cases not run: of a kind the policy does not decide (task cases for a run policy, run
    /// cases for a task policy).
    pub skipped: usize,
}

impl Report {
    /// Count one case: passed when `differences` is empty.
    pub fn record(&mut self, name: &str, source: &str, differences: Vec<String>) {
        if differences.is_empty() {
            self.passed += 1;
        } else {
            self.failures.push(CaseFailure { name: name.into(), source: source.into(), differences });
        }
    }
}

impl fmt::Display for Report {
    /// `N of M cases failed:` and one line per failure, or `M cases passed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.passed + self.failures.len();
        if self.failures.is_empty() {
            return write!(f, "{total} cases passed");
        }
        write!(f, "{} of {total} cases failed:", self.failures.len())?;
        self.failures.iter().try_for_each(|failure| write!(f, "\n{failure}"))
    }
}

/// Parse one suite file's text: a case object or a list of case objects. `source` names it.
pub fn parse_cases(source: &str, text: &str) -> Result<Vec<ConformanceCase>, CaseError> {
    let items = suite_items(source, text)?;
    items.into_iter().filter(|(_, item)| !is_task_case(item)).map(|(at, item)| parse_case(&at, item)).collect()
}

/// The case objects of a suite file (one, or a list), each named by where it is.
fn suite_items(source: &str, text: &str) -> Result<Vec<(String, Value)>, CaseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| CaseError {
        source: source.into(),
        path: None,
        message: e.to_string(),
    })?;
    Ok(match value {
        Value::Array(items) => {
            items.into_iter().enumerate().map(|(i, item)| (format!("{source}[{i}]"), item)).collect()
        }
        item => vec![(source.to_string(), item)],
    })
}

/// Whether a case object is a task case (`kind: decide_task`).
fn is_task_case(item: &Value) -> bool {
    item.get("kind").and_then(Value::as_str) == Some(TASK_KIND)
}

/// The `kind` of a task case.
const TASK_KIND: &str = "decide_task";

/// A task conformance case (`kind: decide_task`): a task case, its name and what the answer
/// must hold (`action`, `delay_seconds`, `reason`, `reason_contains`, `event`).
#[derive(Clone, Debug)]
pub struct TaskConformanceCase {
    /// The case's `name`.
    pub name: String,
    /// The file (and list index) it came from.
    pub source: String,
    /// The failed try.
    pub task: TaskCase,
    /// The expected fields.
    pub expect: Map<String, Value>,
}

/// The task cases of one suite file (a case object or a list; run cases are passed over).
pub fn parse_task_cases(source: &str, text: &str) -> Result<Vec<TaskConformanceCase>, CaseError> {
    let items = suite_items(source, text)?;
    items
        .into_iter()
        .filter(|(_, item)| is_task_case(item))
        .map(|(at, item)| {
            let task = TaskCase::from_json(&at, &item.to_string())?;
            let (name, expect) = name_and_expect(&at, &item)?;
            Ok(TaskConformanceCase { name, source: at, task, expect })
        })
        .collect()
}

/// What every conformance case has beside its case: a `name` (`(unnamed)` when absent) and the
/// `expect`ed fields (none when absent).
fn name_and_expect(source: &str, item: &Value) -> Result<(String, Map<String, Value>), CaseError> {
    let name = item.get("name").and_then(Value::as_str).unwrap_or("(unnamed)").to_string();
    let expect = match item.get("expect") {
        Some(Value::Object(map)) => map.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            return Err(CaseError {
                source: source.into(),
                path: Some("expect".into()),
                message: "must be an object".into(),
            })
        }
    };
    Ok((name, expect))
}

/// The task cases of a file or a directory (recursively, `*.json`), as [`load_cases`] reads
/// run cases.
pub fn load_task_cases(path: &Path) -> Result<Vec<TaskConformanceCase>, CaseError> {
    let mut cases = Vec::new();
    for (file, text) in read_suite_files(path)? {
        cases.extend(parse_task_cases(&file, &text)?);
    }
    Ok(cases)
}

/// Run task cases, comparing every expected field but those in `ignore`: `decide` is the policy
/// under test (an `Err` is its failure, reported as the case's difference).
pub fn run_task_cases(
    cases: &[TaskConformanceCase],
    ignore: &[String],
    mut decide: impl FnMut(&TaskCase) -> Result<TaskDecision, String>,
) -> Report {
    let mut report = Report::default();
    for c in cases {
        let differences = match decide(&c.task) {
            Ok(decision) => compare_task_decision(&decision, &c.expect, ignore),
            Err(e) => vec![format!("policy failed: {e}")],
        };
        report.record(&c.name, &c.source, differences);
    }
    report
}

/// Run task cases against a [`TaskPolicy`] natively: a policy author's `cargo test`.
pub fn run_native_tasks<T: TaskPolicy>(cases: &[TaskConformanceCase], ignore: &[String]) -> Report {
    run_task_cases(cases, ignore, |task| Ok(T::decide_task(task)))
}

fn parse_case(source: &str, value: Value) -> Result<ConformanceCase, CaseError> {
    let error = |path: &str, message: String| CaseError { source: source.into(), path: Some(path.into()), message };
    let case = Case::from_json(source, &value.to_string())?;
    let (name, expect) = name_and_expect(source, &value)?;
    let kind = match value.get("kind").and_then(Value::as_str) {
        Some("should_retry") | None => Kind::ShouldRetry,
        Some("select_steps") => {
            let strategy = value.pointer("/input/strategy").cloned().unwrap_or(Value::Null);
            Kind::SelectSteps(serde_json::from_value(strategy).map_err(|e| error("input.strategy", e.to_string()))?)
        }
        Some(other) => return Err(error("kind", format!("{other:?} is neither should_retry nor select_steps"))),
    };
    Ok(ConformanceCase { name, source: source.to_string(), kind, case, expect })
}

/// Cases from a file (one case, or a list of them) or a directory (recursively, `*.json`, in
/// path order).
pub fn load_cases(path: &Path) -> Result<Vec<ConformanceCase>, CaseError> {
    let mut cases = Vec::new();
    for (file, text) in read_suite_files(path)? {
        cases.extend(parse_cases(&file, &text)?);
    }
    Ok(cases)
}

/// Every `*.json` of a file or a directory (recursively), in path order, with its text.
fn read_suite_files(path: &Path) -> Result<Vec<(String, String)>, CaseError> {
    let unreadable = |path: &Path, e: std::io::Error| CaseError {
        source: path.display().to_string(),
        path: None,
        message: format!("cannot read: {e}"),
    };
    let mut files = Vec::new();
    collect_json_files(path, &mut files).map_err(|(path, e)| unreadable(&path, e))?;
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).map_err(|e| unreadable(&file, e))?;
            Ok((file.display().to_string(), text))
        })
        .collect()
}

fn collect_json_files(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), (PathBuf, std::io::Error)> {
    let at = |e| (path.to_path_buf(), e);
    if std::fs::metadata(path).map_err(at)?.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(at)? {
        let child = entry.map_err(at)?.path();
        if child.is_dir() || child.extension().is_some_and(|x| x == "json") {
            collect_json_files(&child, files)?;
        }
    }
    Ok(())
}

/// Run cases, comparing every expected field but those in `ignore`: `decide` and `select` are
/// the policy under test (an `Err` is the policy's failure, reported as the case's difference).
pub fn run_cases(
    cases: &[ConformanceCase],
    ignore: &[String],
    mut decide: impl FnMut(&Case) -> Result<Decision, String>,
    mut select: impl FnMut(&Run, Strategy) -> Result<SelectionAnswer, String>,
) -> Report {
    let mut report = Report::default();
    for c in cases {
        let differences = match &c.kind {
            Kind::ShouldRetry => match decide(&c.case) {
                Ok(decision) => compare_decision(&c.case.run, &decision, &c.expect, ignore),
                Err(e) => vec![format!("policy failed: {e}")],
            },
            Kind::SelectSteps(strategy) => match select(&c.case.run, *strategy) {
                Ok(selection) => compare_selection(&selection, &c.expect, ignore),
                Err(e) => vec![format!("policy failed: {e}")],
            },
        };
        report.record(&c.name, &c.source, differences);
    }
    report
}

/// Run cases against a [`Policy`] natively, as the component would answer them (no Wasm, no
/// host checks of the answer's shape): a policy author's `cargo test`.
///
/// ```no_run
/// # use runretry_kit::{conformance, Policy};
/// # fn check<MyPolicy: Policy>() {
/// let cases = conformance::load_cases("cases/".as_ref()).unwrap();
/// let report = conformance::run_native::<MyPolicy>(&cases, &[]);
/// assert!(report.failures.is_empty(), "{report}");
/// # }
/// ```
pub fn run_native<P: Policy>(cases: &[ConformanceCase], ignore: &[String]) -> Report {
    run_cases(
        cases,
        ignore,
        |case| Ok(P::should_retry(&case.run, &case.failure, &case.config)),
        |run, strategy| {
            Ok(match P::select_steps(run, strategy) {
                Ok(selection) => SelectionAnswer::Selected { strategy, selection },
                Err(error) => SelectionAnswer::Refused { strategy, error },
            })
        },
    )
}
