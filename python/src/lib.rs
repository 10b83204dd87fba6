//! `runretry._runretry`: the Python extension module over the `runretry` host library.
//!
//! Thin by design: a policy here is the host's [`runretry::Deployment`], cases and decisions cross
//! the boundary in the CLI's JSON format, and every error becomes the Python exception of its
//! kind. The pure-Python package `runretry` re-exports this module and adds the Dagster
//! integration. The library's warnings (`tracing`, seen here as `log` records) go to Python's
//! `logging`, under loggers named for their Rust modules (`runretry.policy`, `runretry.cache`).

mod errors;
mod json;
mod limits;
mod policy;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _runretry(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // No caching of Python's logger levels: an application may configure logging at any time,
    // and runretry logs rarely. A logger already installed (a second import in one process)
    // is kept: the error of `install` is ignored.
    let _ = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Nothing)?.install();
    errors::register(m)?;
    m.add_class::<policy::PyPolicy>()?;
    m.add_function(wrap_pyfunction!(policy::conformance, m)?)?;
    m.add("CONTRACT_VERSION", runretry::CONTRACT_VERSION)?;
    Ok(())
}
