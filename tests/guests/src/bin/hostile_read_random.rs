//! Hostile test guest `read_random` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(run: &Run) -> Decision {
    use std::hash::{BuildHasher, Hasher};
    // std seeds HashMap keys from wasi:random; two hashers, two draws.
    let draw = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write(run.run_id.as_bytes());
        hasher.finish()
    };
    Decision::none(format!("random {:016x} {:016x}", draw(), draw()))
}

hostile_policy!(misbehave);

fn main() {}
