//! `runretry.Policy` and `runretry.conformance`: the host's [`Deployment`] and [`run_suite`].

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use runretry::conformance::{run_suite, SuiteChoice};
use runretry::{Decided, Deployment, Error, OnFailure, OnPolicyError, Strategy, DEFAULT_POLICY_NAME};

use crate::errors;
use crate::json;
use crate::limits::Limits;

/// A retry policy as a deployment runs it: the component, its sandbox limits, and what to do
/// when it fails (`on_policy_error`). Thread-safe; each call runs in a fresh sandboxed instance
/// with the GIL released.
#[pyclass(name = "Policy", module = "runretry", frozen)]
pub(crate) struct PyPolicy {
    /// The policy, or (under `give-up` and `default`) why it failed to load.
    deployment: Deployment,
    name: String,
    mode: &'static str,
}

/// `on_policy_error` as Python spells it (the command line's values).
/// `give_up` is accepted too, as Python spells identifiers.
fn parse_mode(text: &str) -> PyResult<OnPolicyError> {
    OnPolicyError::parse(if text == "give_up" { "give-up" } else { text }).ok_or_else(|| {
        errors::bad_input(format!(
            "bad input: on_policy_error: {text:?} is not a mode (one of \"fail\", \"give-up\", \"default\")"
        ))
    })
}

/// Build the sandbox and load the deployment, with the GIL released (compiling takes time).
/// A policy that does not load under `give-up` or `default` is logged (a warning on the
/// `runretry.policy` logger naming the file and the error) and every decision falls back.
fn load(py: Python<'_>, path: Option<PathBuf>, limits: Limits, mode: OnPolicyError) -> PyResult<PyPolicy> {
    let Some(path) = path else {
        let deployment = py
            .detach(|| limits.sandbox().and_then(|sandbox| Deployment::load(&sandbox, None, mode)))
            .map_err(errors::to_py)?;
        return Ok(PyPolicy { deployment, name: DEFAULT_POLICY_NAME.into(), mode: mode.as_str() });
    };
    let name = path.display().to_string();
    let deployment = py
        .detach(|| {
            let sandbox = limits.sandbox()?;
            match Deployment::load(&sandbox, Some(&path), mode) {
                // The sandbox is built: bad input here is the file, which could not be read.
                // The host refuses an unreadable file whatever the mode, as the command line
                // should (a typo in `--policy`); but a deployment whose policy file is missing is
                // as broken as one whose file is garbage, and must not stop retries either: the
                // mode applies to it, as an invalid component (the fallback never masks bad
                // input, and there is no component at that path).
                Err(Error::BadInput { what, cause }) => {
                    let what = format!("{what}{}", relative_hint(&path));
                    if mode == OnPolicyError::Fail {
                        return Err(Error::BadInput { what, cause });
                    }
                    let error = Error::InvalidComponent { reason: what, cause };
                    Ok(Deployment::failed_to_load(name.clone(), error, OnFailure::new(&sandbox, mode)?))
                }
                loaded => loaded,
            }
        })
        .map_err(errors::to_py)?;
    if let Err(error) = deployment.policy() {
        let consequence = match mode {
            OnPolicyError::Default => "the embedded default policy decides instead",
            _ => "no run is retried",
        };
        // The kind once, as the fallback's event says it: the error's text starts with it.
        let text = error.to_string();
        let detail = text.strip_prefix(&format!("{}: ", error.kind())).unwrap_or(&text);
        // Logged under the package's name (as the library's own warnings are), where a Python
        // application configures it; `runretry._runretry.policy` would be an internal name.
        tracing::warn!(
            target: "runretry::policy",
            "policy {name} does not load ({}): {detail}; on_policy_error={:?}: {consequence}",
            error.kind(),
            mode.as_str()
        );
    }
    Ok(PyPolicy { deployment, name, mode: mode.as_str() })
}

/// For a relative path, what it was resolved against: a sensor's working directory is its
/// code server's, which is easy to mistake for the directory of the file that defines it.
fn relative_hint(path: &Path) -> String {
    if path.is_absolute() {
        return String::new();
    }
    match std::env::current_dir() {
        Ok(dir) => format!(" (relative to the working directory, {})", dir.display()),
        Err(_) => " (relative to the working directory)".to_string(),
    }
}

#[pymethods]
impl PyPolicy {
    /// The embedded default policy: Dagster 1.13.29's run retries and Airflow 3.3.2's task
    /// retries. Keyword arguments: the
    /// limits (`fuel`, `deadline_ms`, ..., `cache_dir`; see `limits`).
    #[staticmethod]
    #[pyo3(signature = (**limits))]
    fn default(py: Python<'_>, limits: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        load(py, None, Limits::from_kwargs(limits)?, OnPolicyError::Fail)
    }

    /// Load the policy component at `path` (relative: to the working directory) under the
    /// given limits. `on_policy_error` is `"fail"` (raise), `"give-up"` (decide not to retry)
    /// or `"default"` (decide with the default policy); it also covers a policy that does not
    /// load (missing, unreadable, not a component): `"fail"` raises here, naming the file; the
    /// others warn on the `runretry.policy` logger and keep the error in `load_error`.
    #[staticmethod]
    #[pyo3(signature = (path, *, on_policy_error="fail", **limits))]
    fn load(
        py: Python<'_>,
        path: PathBuf,
        on_policy_error: &str,
        limits: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mode = parse_mode(on_policy_error)?;
        load(py, Some(path), Limits::from_kwargs(limits)?, mode)
    }

    /// The complete decision for a case (a dict or a JSON string), as a dict. Its
    /// `policy_sha256` names the component that decided: this policy's, the embedded default
    /// policy's when `on_policy_error="default"` decided instead, `None` under `"give-up"`.
    fn decide(&self, py: Python<'_>, case: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let case = json::case_from_py(case)?;
        let decided = py.detach(|| self.deployment.decide_telling(&case));
        self.decided_to_py(py, decided)
    }

    /// The decision for a task's failed try (a task case, `{"task": {...}}`, as a dict or a
    /// JSON string), as a dict: `{"action": "retry"|"fail"|"default", "delay_seconds": ...,
    /// "reason": ..., "events": [...]}`. `on_policy_error` applies as for `decide`: `"give-up"`
    /// fails the task, `"default"` decides as Airflow would. `policy_sha256` as for `decide`.
    fn decide_task(&self, py: Python<'_>, case: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let task = json::task_case_from_py(case)?;
        let decided = py.detach(|| self.deployment.decide_task_telling(&task));
        self.decided_to_py(py, decided)
    }

    /// SHA-256 of the policy component (lowercase hex), `None` when it did not load.
    #[getter]
    fn sha256(&self) -> Option<&str> {
        self.deployment.policy().ok().map(|policy| policy.sha256())
    }

    /// Whether the policy decides about failed runs (Dagster) and about failed task tries
    /// (Airflow): `(runs, tasks)`; `(False, False)` when it did not load.
    #[getter]
    fn decides(&self) -> (bool, bool) {
        match self.deployment.policy() {
            Ok(policy) => (policy.decides_runs(), policy.decides_tasks()),
            Err(_) => (false, false),
        }
    }

    /// What a re-execution with `strategy` (`"FROM_FAILURE"`, `"ALL_STEPS"`,
    /// `"FROM_ASSET_FAILURE"`) runs, or `{"strategy": ..., "error": ...}` when the policy refuses.
    /// `on_policy_error` does not apply here: a failing policy raises.
    fn select_steps(&self, py: Python<'_>, case: &Bound<'_, PyAny>, strategy: &str) -> PyResult<Py<PyAny>> {
        let strategy: Strategy =
            strategy.parse().map_err(|e| errors::bad_input(format!("bad input: strategy: {e}")))?;
        let case = json::case_from_py(case)?;
        let policy = self.deployment.policy().map_err(errors::to_py)?;
        let answer = py.detach(|| policy.select_steps(&case.run, strategy)).map_err(errors::to_py)?;
        json::to_py(py, &answer)
    }

    /// The path the policy was loaded from, or `<embedded default policy>`.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Why the policy did not load (under `"give-up"` or `"default"`, which keep deciding), as
    /// the exception; `None` when it loaded.
    #[getter]
    fn load_error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let error = self.deployment.policy().err()?;
        Some(errors::to_py(error).into_value(py).into_any())
    }

    /// What happens when the policy fails: `"fail"`, `"give-up"` or `"default"`.
    #[getter]
    fn on_policy_error(&self) -> &str {
        self.mode
    }

    fn __repr__(&self) -> String {
        format!("Policy({:?}, on_policy_error={:?})", self.name, self.mode)
    }
}

impl PyPolicy {
    /// The decision as a dict with `policy_sha256` (which component decided), or the error.
    fn decided_to_py<D: serde::Serialize>(&self, py: Python<'_>, decided: Decided<D>) -> PyResult<Py<PyAny>> {
        let decided_by = self.deployment.decided_by(&decided).map(str::to_owned);
        let decision = decided.decision.map_err(errors::to_py)?;
        let dict = json::to_py(py, &decision)?;
        dict.bind(py).set_item("policy_sha256", decided_by)?;
        Ok(dict)
    }
}

/// Run a policy (the default one when `policy_path` is None) against a conformance suite:
/// `"default"` (Dagster's semantics), `"contract"` (properties every policy must hold), or a
/// path to a case file or directory. Returns `{"passed": n, "failed": m, "skipped": k, "failures": [...]}`.
#[pyfunction]
#[pyo3(signature = (policy_path=None, suite="default", *, ignore_fields=Vec::new(), **limits))]
pub(crate) fn conformance(
    py: Python<'_>,
    policy_path: Option<PathBuf>,
    suite: &str,
    ignore_fields: Vec<String>,
    limits: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let limits = Limits::from_kwargs(limits)?;
    let choice = SuiteChoice::parse(suite);
    let report = py
        .detach(|| {
            let sandbox = limits.sandbox()?;
            let policy = match &policy_path {
                Some(path) => sandbox.load_file(path)?,
                None => sandbox.load_default()?,
            };
            run_suite(&policy, &choice, &ignore_fields)
        })
        .map_err(errors::to_py)?;
    let failures = PyList::empty(py);
    for failure in &report.failures {
        let item = PyDict::new(py);
        item.set_item("name", &failure.name)?;
        item.set_item("source", &failure.source)?;
        item.set_item("differences", &failure.differences)?;
        failures.append(item)?;
    }
    let result = PyDict::new(py);
    result.set_item("passed", report.passed)?;
    result.set_item("skipped", report.skipped)?;
    result.set_item("failed", report.failures.len())?;
    result.set_item("failures", failures)?;
    Ok(result.into_any().unbind())
}
