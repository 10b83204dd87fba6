//! Hostile test guest `sleep_an_hour` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    std::thread::sleep(std::time::Duration::from_secs(3600));
    Decision::none("woke up after an hour")
}

hostile_policy!(misbehave);

fn main() {}
