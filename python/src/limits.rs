//! The sandbox's limits as keyword arguments (`Policy.load(path, fuel=..., deadline_ms=...)`),
//! one per row of the core's [`LIMIT_KNOBS`] (the command line's flags take the same rows).
//! Every entry point takes them as `**limits`, read here, once.

use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use runretry::{LimitOverrides, SandboxConfig, LIMIT_KNOBS};

use crate::errors;

/// The keyword beside the limits: where the compile cache goes.
const CACHE_DIR: &str = "cache_dir";

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
            if key == CACHE_DIR {
                limits.cache_dir = Some(cache_dir(&value)?);
            } else if let Some(knob) = LIMIT_KNOBS.iter().find(|knob| knob.name == key) {
                knob.set(&mut limits.overrides, value.extract().map_err(typed)?);
            } else {
                let names: Vec<&str> = LIMIT_KNOBS.iter().map(|knob| knob.name).chain([CACHE_DIR]).collect();
                return Err(PyTypeError::new_err(format!(
                    "got an unexpected keyword argument '{key}' (the limits are {})",
                    names.join(", ")
                )));
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
