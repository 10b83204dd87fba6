//! Hostile test guest `sleep_an_hour` (see host/tests/all/sandbox.rs for what must come of it).

use runretry_kit::{Decision, Run};
use guests::{decision, hostile_policy};

fn misbehave(run: &Run) -> Decision {
    std::thread::sleep(std::time::Duration::from_secs(3600));
    decision("woke up after an hour".into())
}

hostile_policy!(misbehave);

fn main() {}
