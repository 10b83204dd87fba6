//! Hostile guests (modelled on wasmtime's tests/all/iloop.rs, fuel.rs and limits.rs): each is
//! contained with its own typed error, within its deadline, and the host keeps serving.

use std::time::{Duration, Instant};

use runretry::fallback::{self, OnPolicyError};
use runretry::{Action, Case, Error, Sandbox, SandboxConfig};

fn config() -> SandboxConfig {
    SandboxConfig { cache_dir: None, ..SandboxConfig::default() }
}

fn case() -> Case {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/conformance/examples/01-failed-run-no-tags-instance-default-2.json"
    ))
    .unwrap();
    Case::from_json("example 01", &text).unwrap()
}

/// The limits each hostile guest is run under, and what must come of it.
fn expectation(feature: &str) -> (SandboxConfig, fn(Result<runretry::Decision, Error>)) {
    let base = config();
    match feature {
        "infinite_loop" => (
            // Fuel out of the way: only the epoch deadline can stop it.
            SandboxConfig { fuel: u64::MAX / 2, deadline: Duration::from_millis(200), ..base },
            |r| assert!(matches!(r, Err(Error::DeadlineExceeded { deadline_ms: 200 })), "{r:?}"),
        ),
        "hot_loop" => (
            SandboxConfig { fuel: 50_000_000, deadline: Duration::from_secs(60), ..base },
            |r| assert!(matches!(r, Err(Error::FuelExhausted { fuel: 50_000_000 })), "{r:?}"),
        ),
        "memory_bomb" => (
            SandboxConfig { max_memory_bytes: 64 << 20, ..base },
            |r| assert!(matches!(r, Err(Error::MemoryLimit { limit_bytes }) if limit_bytes == 64 << 20), "{r:?}"),
        ),
        "deep_recursion" => (base, |r| assert!(matches!(r, Err(Error::StackOverflow)), "{r:?}")),
        "panic" => (base, |r| match r {
            Err(Error::GuestTrap { stderr, .. }) => {
                assert!(stderr.contains("hostile policy panicked on purpose for run run-A"), "{stderr}")
            }
            other => panic!("expected a trap with the panic message, got {other:?}"),
        }),
        "read_file" => (base, |r| {
            let reason = r.expect("the guest handles the denial itself").reason;
            assert!(reason.starts_with("denied"), "file access must be denied: {reason}");
        }),
        "read_env" => (base, |r| {
            let reason = r.expect("the guest handles the denial itself").reason;
            assert!(reason.starts_with("denied") && reason.contains("; 0 variables"), "{reason}");
        }),
        "oversized_output" => (base, |r| {
            assert!(matches!(&r, Err(Error::InvalidOutput { reason }) if reason.contains("output cap")), "{r:?}")
        }),
        "unknown_steps" => (base, |r| {
            assert!(matches!(&r, Err(Error::InvalidOutput { reason }) if reason.contains("\"no_such_step\" is not a step")), "{r:?}")
        }),
        "duplicate_steps" => (base, |r| {
            assert!(matches!(&r, Err(Error::InvalidOutput { reason }) if reason.contains("duplicate step key")), "{r:?}")
        }),
        "negative_delay" => (base, |r| {
            assert!(matches!(&r, Err(Error::InvalidOutput { reason }) if reason.contains("delay_seconds")), "{r:?}")
        }),
        other => panic!("hostile guest {other:?} has no expectation: add one to tests/sandbox.rs"),
    }
}

/// Guests refused at load time, with the import or export at fault.
fn load_refusal(feature: &str) -> Option<&'static str> {
    match feature {
        "open_socket" => Some("wasi:sockets/"),
        _ => None,
    }
}

fn contain(feature: &str, path: &str) {
    let bytes = std::fs::read(path).unwrap();
    if let Some(import) = load_refusal(feature) {
        let sandbox = Sandbox::new(config()).unwrap();
        match sandbox.load_bytes(feature, &bytes) {
            Err(Error::InvalidComponent { reason }) => assert!(reason.contains(import), "{reason}"),
            other => panic!("{feature} must be refused at load time, got {:?}", other.map(|p| p.name().to_string())),
        }
        return;
    }
    let (limits, check) = expectation(feature);
    let deadline = limits.deadline;
    let sandbox = Sandbox::new(limits).unwrap();
    let policy = sandbox.load_bytes(feature, &bytes).unwrap();
    let started = Instant::now();
    check(policy.decide(&case()));
    // Contained within its deadline (plus slack for a loaded CI machine)...
    assert!(started.elapsed() < deadline + Duration::from_secs(5), "{feature} took {:?}", started.elapsed());
    // ...and the host goes on serving from the same sandbox.
    let default = sandbox.load_default().unwrap();
    assert_eq!(default.decide(&case()).unwrap().action, Action::LaunchNew);
}

macro_rules! hostile_test {
    ($feature:ident, $path:expr) => {
        #[test]
        fn $feature() {
            contain(stringify!($feature), $path);
        }
    };
}

mod hostile {
    use super::*;
    runretry_test_guests::foreach_hostile!(hostile_test);
}

#[test]
fn component_of_another_world_is_refused_naming_the_export() {
    let sandbox = Sandbox::new(config()).unwrap();
    let bytes = std::fs::read(runretry_test_guests::OTHER_WORLD).unwrap();
    match sandbox.load_bytes("other-world.wasm", &bytes) {
        Err(Error::InvalidComponent { reason }) => {
            assert!(reason.contains("does not export runretry:policy/policy@0.1.0"), "{reason}")
        }
        other => panic!("expected InvalidComponent, got {:?}", other.map(|p| p.name().to_string())),
    }
}

#[test]
fn core_module_and_random_bytes_are_refused() {
    let sandbox = Sandbox::new(config()).unwrap();
    let refusal = |bytes: &[u8]| match sandbox.load_bytes("x.wasm", bytes) {
        Err(Error::InvalidComponent { reason }) => reason,
        other => panic!("expected InvalidComponent, got {:?}", other.map(|p| p.name().to_string())),
    };
    assert!(refusal(b"\0asm\x01\0\0\0").contains("core WebAssembly module"));
    let mut state = 0x2545F4914F6CDD1Du64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    assert!(refusal(&random).contains("not a WebAssembly file"));
    // A component header followed by garbage.
    let mut broken = b"\0asm\x0d\0\x01\0".to_vec();
    broken.extend_from_slice(&random);
    assert!(refusal(&broken).contains("does not compile"));
}

#[test]
fn give_up_answers_none_with_the_error_in_events() {
    let sandbox = Sandbox::new(config()).unwrap();
    let panicking = sandbox.load_file(hostile_path("panic").as_ref()).unwrap();
    let decision = fallback::decide(&panicking, None, &case(), OnPolicyError::GiveUp).unwrap();
    assert_eq!(decision.action, Action::None);
    assert!(decision.events[0].contains("guest trap"), "{:?}", decision.events);
}

#[test]
fn default_fallback_decides_with_the_embedded_policy_and_says_so() {
    let sandbox = Sandbox::new(config()).unwrap();
    let panicking = sandbox.load_file(hostile_path("panic").as_ref()).unwrap();
    let default = sandbox.load_default().unwrap();
    let decision = fallback::decide(&panicking, Some(&default), &case(), OnPolicyError::Default).unwrap();
    assert_eq!(decision.action, Action::LaunchNew);
    assert!(decision.events[0].contains("decided with the default policy instead"), "{:?}", decision.events);
    assert!(fallback::decide(&panicking, Some(&default), &case(), OnPolicyError::Fail).is_err());
}

fn hostile_path(wanted: &str) -> String {
    let mut found = None;
    macro_rules! find {
        ($feature:ident, $path:expr) => {
            if stringify!($feature) == wanted {
                found = Some($path.to_string());
            }
        };
    }
    runretry_test_guests::foreach_hostile!(find);
    found.unwrap()
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// 10,000 trapping calls leave the host's memory flat: every store, instance and captured
/// stderr is released.
#[test]
fn ten_thousand_hostile_calls_keep_memory_flat() {
    let sandbox = Sandbox::new(config()).unwrap();
    let panicking = sandbox.load_file(hostile_path("panic").as_ref()).unwrap();
    let case = case();
    for _ in 0..500 {
        assert!(panicking.decide(&case).is_err());
    }
    let before = resident_bytes();
    for _ in 0..10_000 {
        assert!(panicking.decide(&case).is_err());
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(grown < 32 << 20, "resident memory grew by {} MiB over 10,000 calls", grown >> 20);
}
