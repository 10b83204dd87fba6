//! The sandbox's limits as keyword arguments (`Policy.load(path, fuel=..., deadline_ms=...)`),
//! one per row of the core's [`LIMIT_KNOBS`] (the command line's flags take the same rows).
//! Every entry point takes them as `**limits`, read here, once.

use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use runretry::signing::TrustedKeys;
use runretry::{Error, LimitOverrides, Sandbox, SandboxConfig, LIMIT_KNOBS};

use crate::errors;

/// The keywords beside the limits: where the compile cache goes, and the keys a policy must be
/// signed by.
const CACHE_DIR: &str = "cache_dir";
const TRUSTED_KEYS: &str = "trusted_keys";

/// Limits a caller may set, and where the compile cache goes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Limits {
    pub overrides: LimitOverrides,
    /// `Some(None)`: no compile cache; `Some(Some(dir))`: that directory.
    pub cache_dir: Option<Option<PathBuf>>,
    /// Public key files: only policies signed by one of them load (`trusted_keys=`).
    pub trusted_keys: Vec<PathBuf>,
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
            } else if key == TRUSTED_KEYS {
                limits.trusted_keys = trusted_keys(&value)?;
            } else if let Some(knob) = LIMIT_KNOBS.iter().find(|knob| knob.name == key) {
                knob.set(&mut limits.overrides, value.extract().map_err(typed)?);
            } else {
                let names: Vec<&str> =
                    LIMIT_KNOBS.iter().map(|knob| knob.name).chain([CACHE_DIR, TRUSTED_KEYS]).collect();
                return Err(PyTypeError::new_err(format!(
                    "got an unexpected keyword argument '{key}' (the limits are {})",
                    names.join(", ")
                )));
            }
        }
        Ok(limits)
    }

    /// The sandbox: [`config`](Self::config), trusting the keys given (any policy when none is).
    pub fn sandbox(&self) -> Result<Sandbox, Error> {
        let sandbox = Sandbox::new(self.config())?;
        if self.trusted_keys.is_empty() {
            return Ok(sandbox);
        }
        Ok(sandbox.trusting(TrustedKeys::read(&self.trusted_keys)?))
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

/// `trusted_keys=`: a sequence of paths (one path alone is taken too).
fn trusted_keys(value: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if let Ok(one) = value.extract::<PathBuf>() {
        return Ok(vec![one]);
    }
    value
        .extract::<Vec<PathBuf>>()
        .map_err(|e| PyTypeError::new_err(format!("{TRUSTED_KEYS}: a list of key files: {e}")))
}

/// `cache_dir=`: a path, or `False` for no cache.
fn cache_dir(value: &Bound<'_, PyAny>) -> PyResult<Option<PathBuf>> {
    match value.extract::<bool>() {
        Ok(false) => Ok(None),
        Ok(true) => Err(errors::bad_input("bad input: cache_dir: a path, or False for no cache")),
        Err(_) => Ok(Some(value.extract::<PathBuf>()?)),
    }
}
