//! Any bytes as a packed answer from a guest (`runretry_kit::packed::fuzz_answer`): decoding
//! never panics, never allocates past the answer's budget (run with `-rss_limit_mb`), and what
//! decodes round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// The budget of an answer under the default 16 MiB output cap (host/src/answer_budget.rs).
const BUDGET: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    runretry_kit::packed::fuzz_answer(data, BUDGET);
});
