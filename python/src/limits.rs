//! The sandbox's limits as keyword arguments (`Policy.load(path, fuel=..., deadline_ms=...)`),
//! the command line's flags under the same names.

use std::path::PathBuf;
use std::time::Duration;

use runretry::SandboxConfig;

/// Limits a caller may set; `None` keeps [`SandboxConfig`]'s documented default.
#[derive(Clone, Debug, Default)]
pub(crate) struct Limits {
    pub fuel: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub max_memory_mib: Option<usize>,
    pub max_stack_kib: Option<usize>,
    pub max_input_bytes: Option<usize>,
    pub max_output_bytes: Option<usize>,
    /// `Some(None)`: no compile cache; `Some(Some(dir))`: that directory.
    pub cache_dir: Option<Option<PathBuf>>,
}

impl Limits {
    /// The sandbox config: defaults overridden by what was given.
    pub fn config(&self) -> SandboxConfig {
        let mut config = SandboxConfig::default();
        if let Some(fuel) = self.fuel {
            config.fuel = fuel;
        }
        if let Some(ms) = self.deadline_ms {
            config.deadline = Duration::from_millis(ms);
        }
        if let Some(mib) = self.max_memory_mib {
            config.max_memory_bytes = mib << 20;
        }
        if let Some(kib) = self.max_stack_kib {
            config.max_wasm_stack = kib << 10;
        }
        if let Some(bytes) = self.max_input_bytes {
            config.max_input_bytes = bytes;
        }
        if let Some(bytes) = self.max_output_bytes {
            config.max_output_bytes = bytes;
        }
        if let Some(dir) = &self.cache_dir {
            config.cache_dir = dir.clone();
        }
        config
    }
}
