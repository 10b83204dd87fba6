//! Cases in, answers out, in the command line's JSON format (`docs/case-format.md`).

use pyo3::prelude::*;
use pyo3::types::PyString;

use runretry::{Case, TaskCase};

use crate::errors;

/// A case from a `dict` (any JSON-serialisable mapping) or a JSON string. Errors are `BadInput`
/// naming the field at fault, as the command line's.
pub(crate) fn case_from_py(case: &Bound<'_, PyAny>) -> PyResult<Case> {
    let text = text_of(case)?;
    Case::from_json("case", &text).map_err(|e| errors::bad_input(format!("bad input: {e}")))
}

/// A task case (`{"task": {...}}`) from a `dict` or a JSON string; errors as for a case.
pub(crate) fn task_case_from_py(case: &Bound<'_, PyAny>) -> PyResult<TaskCase> {
    let text = text_of(case)?;
    TaskCase::from_json("task case", &text).map_err(|e| errors::bad_input(format!("bad input: {e}")))
}

/// The JSON text of `value`: itself when a string, else `json.dumps(value)`.
pub(crate) fn text_of(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_str()?.to_owned());
    }
    let json = value.py().import("json")?;
    json.call_method1("dumps", (value,))
        .and_then(|text| text.extract::<String>())
        .map_err(|e| errors::bad_input(format!("bad input: a case is a dict or a JSON string: {e}")))
}

/// A serialisable answer as a Python value (`dict`), through `json.loads`.
pub(crate) fn to_py<T: serde::Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(value).expect("answers serialise");
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}
