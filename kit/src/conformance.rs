//! Conformance cases as data, and the one runner: the host runs them against a sandboxed
//! component, the default policy's native tests and a policy author's own `cargo test` against
//! a [`Policy`] directly ([`run_native`]).
//!
//! A case file holds one case object or a list of them (`docs/case-format.md` §4): a case plus
//! `name`, `kind` (`should_retry` or `select_steps` with `input.strategy`) and `expect`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::{compare_decision, compare_selection, Case, CaseError, Decision, Policy, Run, SelectionAnswer, Strategy};

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
    let value: Value = serde_json::from_str(text).map_err(|e| CaseError {
        source: source.into(),
        path: None,
        message: e.to_string(),
    })?;
    match value {
        Value::Array(items) => {
            items.into_iter().enumerate().map(|(i, item)| parse_case(&format!("{source}[{i}]"), item)).collect()
        }
        item => Ok(vec![parse_case(source, item)?]),
    }
}

fn parse_case(source: &str, value: Value) -> Result<ConformanceCase, CaseError> {
    let error = |path: &str, message: String| CaseError { source: source.into(), path: Some(path.into()), message };
    let case = Case::from_json(source, &value.to_string())?;
    let field = |name: &str| value.get(name).and_then(Value::as_str);
    let name = field("name").unwrap_or("(unnamed)").to_string();
    let kind = match field("kind") {
        Some("should_retry") | None => Kind::ShouldRetry,
        Some("select_steps") => {
            let strategy = value.pointer("/input/strategy").cloned().unwrap_or(Value::Null);
            Kind::SelectSteps(serde_json::from_value(strategy).map_err(|e| error("input.strategy", e.to_string()))?)
        }
        Some(other) => return Err(error("kind", format!("{other:?} is neither should_retry nor select_steps"))),
    };
    let expect = match value.get("expect") {
        Some(Value::Object(map)) => map.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(error("expect", "must be an object".into())),
    };
    Ok(ConformanceCase { name, source: source.to_string(), kind, case, expect })
}

/// Cases from a file (one case, or a list of them) or a directory (recursively, `*.json`, in
/// path order).
pub fn load_cases(path: &Path) -> Result<Vec<ConformanceCase>, CaseError> {
    let unreadable = |path: &Path, e: std::io::Error| CaseError {
        source: path.display().to_string(),
        path: None,
        message: format!("cannot read: {e}"),
    };
    let mut files = Vec::new();
    collect_json_files(path, &mut files).map_err(|(path, e)| unreadable(&path, e))?;
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| unreadable(&file, e))?;
        cases.extend(parse_cases(&file.display().to_string(), &text)?);
    }
    Ok(cases)
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
