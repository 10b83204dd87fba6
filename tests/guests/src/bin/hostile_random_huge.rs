//! Hostile test guest `random_huge` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    let bytes = wasi_random::wasi::random::random::get_random_bytes(1 << 40);
    Decision::none(format!("got {} random bytes", bytes.len()))
}

hostile_policy!(misbehave);

/// wasi:random called directly, for `random_huge`.
mod wasi_random {
    wit_bindgen::generate!({
        inline: "package hostile:random; world imports { import wasi:random/random@0.2.0; }",
        path: "wit/random.wit",
        generate_all,
    });
}

fn main() {}
