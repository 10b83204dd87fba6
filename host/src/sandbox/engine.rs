//! The wasmtime engine a sandbox's policies share: fuel, epochs, the stack cap and the pooling
//! allocator, with the ticker thread behind the deadline.

use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::SandboxConfig;
use crate::error::Error;

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
