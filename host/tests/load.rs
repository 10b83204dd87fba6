//! Deadlines on a loaded machine: a test binary of its own, so the load it starts does not slow
//! the other tests (cargo runs test binaries one after another).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runretry::{Case, Error, Sandbox, SandboxConfig};

fn example_case() -> Case {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/examples");
    let path = dir.join("01-failed-run-no-tags-instance-default-2.json");
    Case::from_json("01", &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Busy processes, one per `count`, stopped when dropped.
struct Load(Vec<std::process::Child>);

impl Load {
    fn start(count: usize) -> Self {
        Load(
            (0..count)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .stdin(Stdio::null())
                        .spawn()
                        .expect("start a busy process")
                })
                .collect(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A looping guest with 4 CPU-bound processes on the machine's 2 cores: the deadline is measured
/// on the clock, so it ends within 100 ms of it (before, ticks counted under load ran 5.3 s for
/// 5 s here, and up to 8.3 s elsewhere).
#[test]
fn deadlines_hold_on_a_loaded_machine() {
    let _load = Load::start(4);
    for deadline in [Duration::from_secs(1), Duration::from_secs(5)] {
        let policy =
            Sandbox::new(SandboxConfig { fuel: u64::MAX / 2, deadline, cache_dir: None, ..SandboxConfig::default() })
                .unwrap()
                .load_file(std::path::Path::new(runretry_test_guests::hostile("infinite_loop")))
                .unwrap();
        let case = example_case();
        let started = Instant::now();
        let result = policy.decide(&case);
        let took = started.elapsed();
        eprintln!("deadline {deadline:?} under load: ended after {took:?}");
        assert!(matches!(result, Err(Error::DeadlineExceeded { .. })), "{result:?}");
        assert!(took < deadline + Duration::from_millis(100), "a {deadline:?} deadline ended after {took:?}");
    }
}
