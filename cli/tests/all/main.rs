//! Every integration test in one binary (wasmtime's `tests/all` layout): wasmtime is linked once,
//! not once per file, and the helpers the tests share live in `support`.
//!
//! Run one area with a filter: `cargo test -p runretry-cli --test all sandbox::`.

mod support;

mod cli;
mod conformance_kit;
mod docs;
mod hostile_answers;
mod limits;
mod replay;
mod sandbox;
mod serve;
mod serve_candidates;
mod serve_fleet;
mod serve_limits;
mod serve_log;
mod signing;
mod tasks;
