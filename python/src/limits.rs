//! The sandbox's limits as keyword arguments (`Policy.load(path, fuel=..., deadline_ms=...)`),
//! the command line's flags under the same names. Every entry point takes them as `**limits`,
//! read here, once.

use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use runretry::{LimitOverrides, SandboxConfig};

use crate::errors;

/// The keyword arguments, as the stubs (`_runretry.pyi`) list them.
const NAMES: &str = "fuel, deadline_ms, max_memory_mib, max_stack_kib, max_input_bytes, max_output_bytes, cache_dir";

/// Limits a caller may set, and where the compile cache goes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Limits {
    pub overrides: LimitOverrides,
    /// `Some(None)`: no compile cache; `Some(Some(dir))`: that directory.
    pub cache_dir: Option<Option<PathBuf>>,
}

impl Limits {
    /// Read the limit keywords of a call; `None` means the default, an unknown keyword is a
    /// `TypeError` (as Python's own for a misspelt argument).
    pub fn from_kwargs(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut limits = Limits::default();
        for (key, value) in kwargs.into_iter().flat_map(|kwargs| kwargs.iter()) {
            let key: String = key.extract()?;
            if value.is_none() {
                continue;
            }
            let typed = |e: PyErr| PyTypeError::new_err(format!("{key}: {e}"));
            let o = &mut limits.overrides;
            match key.as_str() {
                "fuel" => o.fuel = Some(value.extract().map_err(typed)?),
                "deadline_ms" => o.deadline_ms = Some(value.extract().map_err(typed)?),
                "max_memory_mib" => o.max_memory_mib = Some(value.extract().map_err(typed)?),
                "max_stack_kib" => o.max_stack_kib = Some(value.extract().map_err(typed)?),
                "max_input_bytes" => o.max_input_bytes = Some(value.extract().map_err(typed)?),
                "max_output_bytes" => o.max_output_bytes = Some(value.extract().map_err(typed)?),
                "cache_dir" => limits.cache_dir = Some(cache_dir(&value)?),
                other => {
                    return Err(PyTypeError::new_err(format!(
                        "got an unexpected keyword argument '{other}' (the limits are {NAMES})"
                    )))
                }
            }
        }
        Ok(limits)
    }

    /// The sandbox config: defaults overridden by what was given.
    pub fn config(&self) -> SandboxConfig {
        let mut config = self.overrides.apply(SandboxConfig::default());
        if let Some(dir) = &self.cache_dir {
            config.cache_dir = dir.clone();
        }
        config
    }
}

/// `cache_dir=`: a path, or `False` for no cache.
fn cache_dir(value: &Bound<'_, PyAny>) -> PyResult<Option<PathBuf>> {
    match value.extract::<bool>() {
        Ok(false) => Ok(None),
        Ok(true) => Err(errors::bad_input("bad input: cache_dir: a path, or False for no cache")),
        Err(_) => Ok(Some(value.extract::<PathBuf>()?)),
    }
}
