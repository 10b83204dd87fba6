//! The sandbox's limits as keyword arguments (`Policy.load(path, fuel=..., deadline_ms=...)`),
//! the command line's flags under the same names.

use std::path::PathBuf;

use runretry::{LimitOverrides, SandboxConfig};

/// Limits a caller may set, and where the compile cache goes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Limits {
    pub overrides: LimitOverrides,
    /// `Some(None)`: no compile cache; `Some(Some(dir))`: that directory.
    pub cache_dir: Option<Option<PathBuf>>,
}

impl Limits {
    /// The sandbox config: defaults overridden by what was given.
    pub fn config(&self) -> SandboxConfig {
        let mut config = self.overrides.apply(SandboxConfig::default());
        if let Some(dir) = &self.cache_dir {
            config.cache_dir = dir.clone();
        }
        config
    }
}
