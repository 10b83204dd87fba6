//! The sandbox's configuration, for whoever sets limits: every limit with its default and why,
//! the overrides people write, and where the compile cache lives.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// Limits a user sets (command-line flags, Python keyword arguments), in the units people
/// write them in; `None` keeps [`SandboxConfig`]'s default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LimitOverrides {
    /// Fuel per call (~Wasm instructions).
    pub fuel: Option<u64>,
    /// Wall-clock deadline per call, in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Linear-memory cap per instance, in MiB.
    pub max_memory_mib: Option<usize>,
    /// Wasm stack cap, in KiB.
    pub max_stack_kib: Option<usize>,
    /// Largest input, in bytes of text.
    pub max_input_bytes: Option<usize>,
    /// Largest output, in bytes of text.
    pub max_output_bytes: Option<usize>,
}

impl LimitOverrides {
    /// `config` with every limit given here replacing its value.
    pub fn apply(&self, mut config: SandboxConfig) -> SandboxConfig {
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
        config
    }
}

/// Every limit a policy runs under. All are on by default; each knob says its default, what it
/// costs, and why the default is what it is.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxConfig {
    /// Fuel per call (instantiation included), about one unit per Wasm instruction.
    /// Default 10,000,000,000: a few seconds of guest code. The default policy needs ~1% of it on
    /// a 10,000-step plan, but an interpreted JavaScript guest (StarlingMonkey) needed over
    /// 2,000,000,000 for the same plan. Cost: metering adds a few percent to guest run time.
    /// Why: a deterministic bound on compute, the same answer whatever the machine's load.
    pub fuel: u64,
    /// Wall-clock deadline per call, enforced by epoch interruption. Default 5 s: above what the
    /// fuel budget takes on this class of machine, so on a healthy host fuel (deterministic) is
    /// the limit that bites, and a retry decision still never holds an orchestrator up for long.
    /// Cost: one ticker thread per engine and a cheap check at loop heads.
    pub deadline: Duration,
    /// Epoch tick: how often a running guest looks at the clock, so the deadline's resolution.
    /// The deadline is measured against the monotonic clock, not by counting ticks, so a loaded
    /// machine that wakes the ticker late cannot stretch it. Default 5 ms. Cost: one wake-up per
    /// tick and a clock read per tick while a guest runs.
    pub epoch_tick: Duration,
    /// Linear-memory cap per instance, in bytes. Default 512 MiB: a Python (componentize-py)
    /// guest needs tens of MiB before it runs a line; 512 MiB leaves room for big plans while a
    /// memory bomb stays harmless. Cost: none until reached.
    pub max_memory_bytes: usize,
    /// Table-elements cap per table. Default 1,000,000: interpreters have large function tables.
    pub max_table_elements: usize,
    /// Wasm stack cap in bytes. Default 1 MiB (wasmtime's own is 512 KiB): interpreters recurse
    /// deeply; runaway recursion still ends in a clean stack-overflow trap. Hazard: guest code
    /// runs on the calling thread's stack, so this must stay well below that stack's size (Rust
    /// spawns 2 MiB threads by default); past it the host process overflows and aborts.
    pub max_wasm_stack: usize,
    /// Largest input a call accepts, in bytes of text (step keys, tags, ids). Default 64 MiB.
    pub max_input_bytes: usize,
    /// Largest decision a guest may return, in bytes of text. Default 16 MiB.
    pub max_output_bytes: usize,
    /// Guest stderr kept and attached to errors. Default 64 KiB; writes beyond it fail in the guest.
    pub max_stderr_bytes: usize,
    /// Pre-reserve instance slots (pooling allocator with copy-on-write memory images) for fast
    /// fresh instances. Default on; falls back to on-demand allocation when the machine cannot
    /// reserve the address space. Cost: virtual address space, and up to 4 MiB of resident
    /// memory per slot a policy has dirtied (kept to spare the next instance page faults).
    pub pooling: bool,
    /// Where compiled components are cached; `None` disables the cache. Default:
    /// `$RUNRETRY_CACHE_DIR`, else `$XDG_CACHE_HOME/runretry`, else `~/.cache/runretry`;
    /// `RUNRETRY_CACHE=off` disables it. Why: Python and JavaScript guests take 8-37 s to compile.
    pub cache_dir: Option<PathBuf>,
    /// The compile cache's entries together, in bytes; past it the entries used least recently
    /// are deleted. Default 256 MiB:
    /// a hundred Rust policies (~2 MB each) or ten Python or JavaScript guests. Why: a server
    /// that accepts uploads compiles every distinct candidate, and must not fill the disk.
    pub cache_max_bytes: u64,
}

impl SandboxConfig {
    /// A limit of 0 would fail every call (`--deadline-ms 0` was taken and made every decision
    /// a timeout): refused, naming the limit as each front end spells it.
    pub(crate) fn refuse_zero_limits(&self) -> Result<(), Error> {
        match LIMIT_KNOBS.iter().find(|knob| (knob.is_zero)(self)) {
            Some(knob) => Err(Error::bad_input(format!(
                "{} ({}) is 0, which would fail every call: give at least 1 (or leave it out for the default)",
                knob.name,
                knob.flag()
            ))),
            None => Ok(()),
        }
    }
}

/// One limit a user sets, as every front end spells it: the command line's flags, the Python
/// keyword arguments and their stubs all take the name, the help and the default from
/// [`LIMIT_KNOBS`], so a knob is declared here once.
#[derive(Clone, Copy, Debug)]
pub struct LimitKnob {
    /// The Python keyword and [`LimitOverrides`] field (`deadline_ms`); the flag is the same
    /// with dashes ([`LimitKnob::flag`]).
    pub name: &'static str,
    /// What it limits, with its unit, in a line.
    pub help: &'static str,
    /// The value in `config`, in the knob's unit.
    value_in: fn(&SandboxConfig) -> u64,
    /// Whether `config` has this limit at 0 (in its own unit: 64 KiB of memory is not 0).
    is_zero: fn(&SandboxConfig) -> bool,
    /// Set the override.
    set: fn(&mut LimitOverrides, u64),
}

impl LimitKnob {
    /// The command-line flag: `--deadline-ms`.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    /// The value when it is not set, in the knob's unit.
    pub fn default_value(&self) -> u64 {
        (self.value_in)(&SandboxConfig { cache_dir: None, ..SandboxConfig::default() })
    }

    /// Give the knob `value` (in its unit) in `overrides`.
    pub fn set(&self, overrides: &mut LimitOverrides, value: u64) {
        (self.set)(overrides, value)
    }
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Every limit a user can set, in the order `--help` lists them.
pub const LIMIT_KNOBS: [LimitKnob; 6] = [
    LimitKnob {
        name: "fuel",
        help: "Fuel per call (~Wasm instructions).",
        value_in: |c| c.fuel,
        is_zero: |c| c.fuel == 0,
        set: |o, v| o.fuel = Some(v),
    },
    LimitKnob {
        name: "deadline_ms",
        help: "Wall-clock deadline per call, in milliseconds.",
        value_in: |c| u64::try_from(c.deadline.as_millis()).unwrap_or(u64::MAX),
        is_zero: |c| c.deadline.is_zero(),
        set: |o, v| o.deadline_ms = Some(v),
    },
    LimitKnob {
        name: "max_memory_mib",
        help: "Linear-memory cap per instance, in MiB.",
        value_in: |c| (c.max_memory_bytes >> 20) as u64,
        is_zero: |c| c.max_memory_bytes == 0,
        set: |o, v| o.max_memory_mib = Some(to_usize(v)),
    },
    LimitKnob {
        name: "max_stack_kib",
        help: "Wasm stack cap, in KiB.",
        value_in: |c| (c.max_wasm_stack >> 10) as u64,
        is_zero: |c| c.max_wasm_stack == 0,
        set: |o, v| o.max_stack_kib = Some(to_usize(v)),
    },
    LimitKnob {
        name: "max_input_bytes",
        help: "Largest input, in bytes of text.",
        value_in: |c| c.max_input_bytes as u64,
        is_zero: |c| c.max_input_bytes == 0,
        set: |o, v| o.max_input_bytes = Some(to_usize(v)),
    },
    LimitKnob {
        name: "max_output_bytes",
        help: "Largest output, in bytes of text.",
        value_in: |c| c.max_output_bytes as u64,
        is_zero: |c| c.max_output_bytes == 0,
        set: |o, v| o.max_output_bytes = Some(to_usize(v)),
    },
];

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            fuel: 10_000_000_000,
            deadline: Duration::from_secs(5),
            epoch_tick: Duration::from_millis(5),
            max_memory_bytes: 512 << 20,
            max_table_elements: 1_000_000,
            max_wasm_stack: 1 << 20,
            max_input_bytes: 64 << 20,
            max_output_bytes: 16 << 20,
            max_stderr_bytes: 64 << 10,
            pooling: true,
            cache_dir: default_cache_dir(),
            cache_max_bytes: crate::cache::CompileCache::DEFAULT_MAX_BYTES,
        }
    }
}

/// The documented default cache location, honouring the opt-out.
pub fn default_cache_dir() -> Option<PathBuf> {
    if std::env::var("RUNRETRY_CACHE").is_ok_and(|v| v == "off" || v == "0") {
        return None;
    }
    if let Some(dir) = std::env::var_os("RUNRETRY_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("runretry"))
}
