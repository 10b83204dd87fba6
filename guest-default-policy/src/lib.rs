//! Dagster's run-retry semantics (dagster 1.13.29) as a plain Rust library.
//!
//! [`should_retry`] gives the complete decision for a failed run, [`select_steps`] the steps a
//! re-execution runs. The library has no Wasm in it: it is unit tested natively, benchmarked
//! natively, and reused by custom policies (see `examples/backoff-policy`). Built for
//! `wasm32-wasip2`, the crate also exports it as a runretry policy component (module `export`).

#![warn(missing_docs)]

pub mod decide;
pub mod group;
pub mod model;
pub mod parse;
pub mod select;
pub mod tags;

#[cfg(target_arch = "wasm32")]
mod export;
#[cfg(target_arch = "wasm32")]
pub use export::*;

pub use decide::should_retry;
pub use model::*;
pub use select::select_steps;
