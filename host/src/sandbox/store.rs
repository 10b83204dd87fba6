//! The per-call store, private plumbing: WASI granting nothing, the resource limiter, the
//! budget and deadline of each call, and the typing of what stopped a guest.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::{deadline_from_now, Interrupt, SandboxConfig};
use crate::determinism::{CallEnv, CallState, FixedWallClock, SleptPastDeadline};
use crate::error::{clip_untrusted, Cause, Error};

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

impl CallState for HostState {
    fn call(&self) -> &CallEnv {
        &self.call
    }

    fn call_mut(&mut self) -> &mut CallEnv {
        &mut self.call
    }

    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
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
