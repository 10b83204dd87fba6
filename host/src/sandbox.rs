//! The sandbox a policy runs in: one documented config, the engine built from it, and the
//! per-call store with WASI granting nothing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::determinism::{CallEnv, FixedWallClock, SleptPastDeadline};
use crate::error::{clip_untrusted, Cause, Error};

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
    /// are deleted. Default 256 MiB ([`CompileCache::DEFAULT_MAX_BYTES`](crate::cache::CompileCache::DEFAULT_MAX_BYTES)):
    /// a hundred Rust policies (~2 MB each) or ten Python or JavaScript guests. Why: a server
    /// that accepts uploads compiles every distinct candidate, and must not fill the disk.
    pub cache_max_bytes: u64,
}

impl SandboxConfig {
    /// A limit of 0 would fail every call (`--deadline-ms 0` was taken and made every decision
    /// a timeout): refused, naming the limit as each front end spells it.
    pub(crate) fn refuse_zero_limits(&self) -> Result<(), Error> {
        let zero = [
            ("fuel", "--fuel", self.fuel == 0),
            ("deadline_ms", "--deadline-ms", self.deadline.is_zero()),
            ("max_memory_mib", "--max-memory-mib", self.max_memory_bytes == 0),
            ("max_stack_kib", "--max-stack-kib", self.max_wasm_stack == 0),
            ("max_input_bytes", "--max-input-bytes", self.max_input_bytes == 0),
            ("max_output_bytes", "--max-output-bytes", self.max_output_bytes == 0),
        ];
        match zero.iter().find(|(_, _, is_zero)| *is_zero) {
            Some((name, flag, _)) => Err(Error::bad_input(format!(
                "{name} ({flag}) is 0, which would fail every call: give at least 1 (or leave it out for the default)"
            ))),
            None => Ok(()),
        }
    }
}

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

/// Instances the pooling allocator keeps slots for. Concurrent calls beyond this fail to
/// instantiate rather than grow without bound.
const POOLED_COMPONENT_INSTANCES: u32 = 64;
/// Memory kept resident per pooled slot between instances (see `pooling_config`).
const KEEP_RESIDENT_BYTES: usize = 4 << 20;
/// Decommits (madvise) batched per CPU shard. 1: a freed slot gives its memory back at once.
/// A batch of 16 saved a few system calls but held up to 16 slots' dirty pages, each up to the
/// memory cap: a batch of memory-hungry decisions peaked at 6 GiB where 1 GiB was enough.
const DECOMMIT_BATCH: usize = 1;
/// Python guests hold more than 16 core instances per component.
const POOLED_CORE_INSTANCES_PER_COMPONENT: u32 = 64;

/// Build the engine: fuel, epochs, stack cap and (when possible) the pooling allocator.
pub(crate) fn build_engine(config: &SandboxConfig) -> Result<Engine, Error> {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        .memory_init_cow(true)
        // Policies are synchronous functions: no async stacks or concurrency machinery per call.
        .concurrency_support(false);
    // For profiling (docs/performance.md): `perf` then names the guest's functions.
    if std::env::var_os("RUNRETRY_PERFMAP").is_some() {
        wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if config.pooling {
        let mut pooled = wasm.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(config)));
        if let Ok(engine) = Engine::new(&pooled) {
            start_epoch_ticker(&engine, config.epoch_tick);
            return Ok(engine);
        }
        // Address space is short here (ulimit -v, 32-bit): on-demand allocation still works.
    }
    let engine =
        Engine::new(&wasm).map_err(|e| Error::invalid_component(format!("cannot configure the Wasm engine: {e}")))?;
    start_epoch_ticker(&engine, config.epoch_tick);
    Ok(engine)
}

fn pooling_config(config: &SandboxConfig) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOLED_COMPONENT_INSTANCES)
        .max_core_instances_per_component(POOLED_CORE_INSTANCES_PER_COMPONENT)
        .total_core_instances(POOLED_COMPONENT_INSTANCES * 8)
        .max_memories_per_component(8)
        .total_memories(POOLED_COMPONENT_INSTANCES * 2)
        .max_tables_per_component(64)
        .total_tables(POOLED_COMPONENT_INSTANCES * 16)
        .max_memory_size(config.max_memory_bytes)
        .table_elements(config.max_table_elements)
        // Reset a freed slot's dirty pages with memset instead of madvise, found with Linux's
        // PAGEMAP_SCAN where the kernel has it (6.7+): a fresh instance then takes no page
        // faults for the memory a policy actually uses, and the kernel no longer tears pages
        // down and faults them back in for every decision. Without PAGEMAP_SCAN only the first
        // KEEP_RESIDENT_BYTES are memset, whether touched or not.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .decommit_batch_size(DECOMMIT_BATCH);
    pool
}

/// Advance the engine's epoch every `tick` for as long as the engine lives.
fn start_epoch_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("runretry-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(tick);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawn the epoch ticker thread");
}

/// Why calls were stopped from outside (see [`Interrupt`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Whoever waited for the outcome is gone (a client that disconnected).
    Cancelled = 1,
    /// A newer candidate took this one's place.
    Superseded = 2,
    /// The server is stopping.
    Shutdown = 3,
    /// The time budget ran out.
    OutOfTime = 4,
}

/// Ends a policy's calls from outside, before their own deadline: a candidate's checks when they
/// are cancelled, superseded, or out of their total time budget. The guest sees it at its next
/// epoch tick, as it sees its deadline.
pub struct Interrupt {
    stopped: AtomicU8,
    until: Instant,
}

impl Interrupt {
    /// An interrupt that fires by itself once `budget` has passed.
    pub fn new(budget: Duration) -> Arc<Self> {
        Arc::new(Interrupt { stopped: AtomicU8::new(0), until: deadline_from_now(budget) })
    }

    /// Stop the calls; the first reason given is the one kept.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.stopped.compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Why the calls must stop, if they must.
    pub fn reason(&self) -> Option<StopReason> {
        if self.stopped.load(Ordering::SeqCst) == 0 && Instant::now() >= self.until {
            self.stop(StopReason::OutOfTime);
        }
        match self.stopped.load(Ordering::SeqCst) {
            1 => Some(StopReason::Cancelled),
            2 => Some(StopReason::Superseded),
            3 => Some(StopReason::Shutdown),
            4 => Some(StopReason::OutOfTime),
            _ => None,
        }
    }
}

/// Per-call host state: WASI with nothing granted, the resource limiter, captured stderr, and
/// the virtual clocks and seeded randomness of `determinism`.
pub(crate) struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) call: CallEnv,
    pub(crate) limiter: Limiter,
    pub(crate) stderr: MemoryOutputPipe,
    /// When the current call must end (the deadline, read on the monotonic clock).
    deadline_at: Instant,
    /// Stops the call from outside, when set.
    interrupt: Option<Arc<Interrupt>>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Refuses growth past the caps and remembers that it did, so the resulting trap (a Rust guest
/// aborts on allocation failure) is reported as a memory limit, not a generic trap.
pub(crate) struct Limiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
    pub(crate) hit: Arc<AtomicBool>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory_bytes;
        if !allowed {
            self.hit.store(true, Ordering::Relaxed);
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_table_elements;
        if !allowed {
            self.hit.store(true, Ordering::Relaxed);
        }
        Ok(allowed)
    }
}

/// A fresh store for one call, with fuel, deadline and randomness from `seed` set (a new store
/// starts with neither fuel nor deadline).
pub(crate) fn new_store(
    engine: &Engine,
    config: &SandboxConfig,
    seed: [u8; 32],
    interrupt: Option<Arc<Interrupt>>,
) -> Store<HostState> {
    let stderr = MemoryOutputPipe::new(config.max_stderr_bytes);
    // No preopens, no environment, no arguments, no network, no stdin/stdout: only stderr,
    // bounded. Clocks and randomness are replaced in the linker (`determinism`); the fixed wall
    // clock is set here because WASI's filesystem code reads it too.
    let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).wall_clock(FixedWallClock).build();
    let state = HostState {
        wasi,
        table: ResourceTable::new(),
        call: CallEnv::new(config.fuel, config.deadline, seed),
        limiter: Limiter {
            max_memory_bytes: config.max_memory_bytes,
            max_table_elements: config.max_table_elements,
            hit: Arc::new(AtomicBool::new(false)),
        },
        stderr,
        deadline_at: deadline_from_now(config.deadline),
        interrupt,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    // Every tick the guest checks the clock: past the deadline it stops, else one more tick.
    store.epoch_deadline_callback(|store| {
        let state = store.data();
        if Instant::now() >= state.deadline_at || state.interrupt.as_ref().is_some_and(|i| i.reason().is_some()) {
            Err(wasmtime::Trap::Interrupt.into())
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
    set_budget(&mut store, config);
    store
}

/// Start another call on a kept store: the virtual clocks at zero, randomness restarted from
/// `seed`, a full fuel budget and a deadline counted from now.
pub(crate) fn begin_call(store: &mut Store<HostState>, config: &SandboxConfig, seed: [u8; 32]) {
    store.data_mut().call = CallEnv::new(config.fuel, config.deadline, seed);
    set_budget(store, config);
}

/// `deadline` from now; a deadline too far to represent is a year away (the same, in practice).
fn deadline_from_now(deadline: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(deadline).unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// A full fuel budget and a deadline counted from now.
fn set_budget(store: &mut Store<HostState>, config: &SandboxConfig) {
    store.set_fuel(config.fuel).expect("fuel is enabled on every runretry engine");
    store.data_mut().deadline_at = deadline_from_now(config.deadline);
    store.set_epoch_deadline(1);
}

/// Turn a wasmtime failure during a call into the typed error it stands for.
pub(crate) fn classify(err: wasmtime::Error, store: &Store<HostState>, config: &SandboxConfig) -> Error {
    let state = store.data();
    let trap = err.downcast_ref::<wasmtime::Trap>();
    let deadline = || Error::DeadlineExceeded { deadline_ms: config.deadline.as_millis() as u64 };
    match trap {
        Some(wasmtime::Trap::OutOfFuel) => return Error::FuelExhausted { fuel: config.fuel },
        Some(wasmtime::Trap::Interrupt) => return deadline(),
        Some(wasmtime::Trap::StackOverflow) => return Error::StackOverflow,
        _ => {}
    }
    if err.downcast_ref::<SleptPastDeadline>().is_some() {
        return deadline();
    }
    if state.limiter.hit.load(Ordering::Relaxed) {
        return Error::MemoryLimit { limit_bytes: config.max_memory_bytes };
    }
    // The first line says what stopped the guest: the trap, the exit it asked for, or the root
    // of the host's error (whose outer layers are only "error while executing at wasm
    // backtrace"); the backtrace follows. The whole chain is kept as the error's source.
    let what = match (trap, err.downcast_ref::<wasmtime_wasi::I32Exit>()) {
        (Some(trap), _) => trap.to_string(),
        (None, Some(exit)) => format!("the policy called exit({}) instead of returning an answer", exit.0),
        (None, None) => err.root_cause().to_string(),
    };
    Error::GuestTrap {
        // The message may quote the guest (a WASI error, its function names): clipped.
        message: format!("{}\n{}", clip_untrusted(&what), clip_untrusted(&format!("{err:?}"))),
        stderr: String::from_utf8_lossy(&state.stderr.contents()).into_owned(),
        cause: Some(Cause::from_wasmtime(&err)),
    }
}
