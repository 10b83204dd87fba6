//! Hostile guests (modelled on wasmtime's tests/all/iloop.rs, fuel.rs and limits.rs): each is
//! contained with its own typed error, within its deadline, and the host keeps serving.

use std::time::{Duration, Instant};

use runretry::{Action, Case, Deployment, Error, OnPolicyError, Run, RunStatus, Sandbox, SandboxConfig, Strategy};

fn config() -> SandboxConfig {
    SandboxConfig { cache_dir: None, ..SandboxConfig::default() }
}

fn case() -> Case {
    crate::support::example_case("01")
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
        "hot_loop" => (SandboxConfig { fuel: 50_000_000, deadline: Duration::from_secs(60), ..base }, |r| {
            assert!(matches!(r, Err(Error::FuelExhausted { fuel: 50_000_000 })), "{r:?}")
        }),
        "memory_bomb" => (SandboxConfig { max_memory_bytes: 64 << 20, ..base }, |r| {
            assert!(matches!(r, Err(Error::MemoryLimit { limit_bytes }) if limit_bytes == 64 << 20), "{r:?}")
        }),
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
            assert!(
                matches!(&r, Err(Error::InvalidOutput { reason }) if reason.contains("\"no_such_step\" is not a step")),
                "{r:?}"
            )
        }),
        "unknown_assets" => (base, |r| {
            assert!(
                matches!(&r, Err(Error::InvalidOutput { reason })
                    if reason.contains("asset_selection: \"no_such_asset\" is not an asset of the plan")),
                "{r:?}"
            )
        }),
        "duplicate_steps" => (base, |r| {
            assert!(
                matches!(&r, Err(Error::InvalidOutput { reason }) if reason.contains("duplicate step key")),
                "{r:?}"
            )
        }),
        "negative_delay" => (base, |r| {
            assert!(matches!(&r, Err(Error::InvalidOutput { reason }) if reason.contains("delay_seconds")), "{r:?}")
        }),
        // Sleeps are virtual: one past the deadline ends the call at once, not an hour later.
        "sleep_an_hour" | "sleep_loop" => (SandboxConfig { deadline: SLEEP_DEADLINE, ..base }, |r| {
            assert!(matches!(r, Err(Error::DeadlineExceeded { deadline_ms: 2000 })), "{r:?}")
        }),
        "read_clocks" => (base, |r| {
            let reason = r.unwrap().reason;
            // The fixed wall clock; 250 ms of sleep seen as 250 ms on the virtual clock, plus
            // the few hundred instructions of the sleep call itself.
            assert!(reason.starts_with("wall 946684800.000000000 elapsed "), "{reason}");
            let slept: u64 = reason.split(" slept ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
            assert!((250_000_000..250_010_000).contains(&slept), "{reason}");
        }),
        "read_random" => (base, |r| assert!(r.unwrap().reason.starts_with("random "))),
        "random_huge" => (base, |r| {
            let message = r.as_ref().unwrap_err().to_string();
            assert!(message.contains("asked for 1099511627776 random bytes"), "{message}");
        }),
        "exit_zero" => (base, |r| {
            let message = r.as_ref().unwrap_err().to_string();
            assert!(message.contains("the policy called exit(0)"), "{message}");
        }),
        "escape_stderr" => (base, |r| {
            let message = r.as_ref().unwrap_err().to_string();
            assert!(!message.contains('\x1b') && !message.contains('\x07'), "raw control characters: {message:?}");
            assert!(message.contains("\\u{1b}[2J\\u{1b}[31mINFO all good | runretry: decision"), "{message}");
        }),
        "resubmit_unknown" => {
            (base, |r| assert_invalid(r, "resubmit_run_id: run \"no-such-run\" is not in the run group"))
        }
        "resubmit_started" => (base, |r| assert_invalid(r, "resubmit_run_id: run \"run-B\" has already started")),
        // Five million empty strings cost the host 120 MB decoded: refused before decoding.
        "many_events" => (base, |r| assert_invalid(r, "over the output cap: decoded, the answer would take more than")),
        "many_tags" => (base, |r| assert_invalid(r, "failed_run_tags: 1000000 tags, over the cap of 10000")),
        "tag_nul" => (base, |r| assert_invalid(r, "value holds the control or invisible character \\u{0}")),
        "tag_empty_key" => (base, |r| assert_invalid(r, "failed_run_tags: a tag key is empty")),
        "tag_huge_key" => (base, |r| assert_invalid(r, "key is 1048576 bytes, over the cap of 1024")),
        "tag_bom_key" => (base, |r| assert_invalid(r, "key holds the control or invisible character \\u{feff}")),
        "huge_refusal" => (base, |r| assert_eq!(r.unwrap().action, Action::None)),
        // Issue #31: a reason or an event is cut to a size a person can read, the cut marked.
        "long_texts" => (base, |r| {
            let decision = r.unwrap();
            let cap = runretry::rules::MAX_DECISION_TEXT_BYTES;
            for text in [&decision.reason, &decision.events[0]] {
                assert!(text.len() < cap + 64 && text.ends_with(" more bytes cut]"), "{} bytes", text.len());
            }
            assert_eq!(decision.events[1], "short");
        }),
        // Packed answers are read strictly, within a budget fixed before the call: each is
        // invalid output naming what is wrong, never a trap, an abort or gigabytes of memory.
        "packed_map_header" => (base, |r| assert_invalid(r, "map of 4294967295 entries, but only 0 bytes follow")),
        "packed_empty_strings" => {
            (base, |r| assert_invalid(r, "over the output cap: the policy handed the host more than"))
        }
        "packed_unknown_field" => (base, |r| assert_invalid(r, "unknown field `bulk`")),
        "packed_trailing_bytes" => (base, |r| assert_invalid(r, "1 bytes after the answer")),
        "packed_integer_enum" => (base, |r| assert_invalid(r, "invalid type: integer `2`, expected one of")),
        "packed_duplicate_field" => (base, |r| assert_invalid(r, "duplicate field `reason`")),
        "packed_garbage" => (base, |r| assert_invalid(r, "0xc1 is not a MessagePack marker")),
        "packed_huge_error" => (base, |r| {
            assert_invalid(r.clone(), "`runretry:policy/packed@0.4.0` should-retry failed: cannot read the case");
            assert_invalid(r, "more bytes cut]");
        }),
        // Wrong, not hostile: the conformance kit must catch it (tests/conformance_kit.rs).
        "plan_order_selection" => (base, |r| assert_eq!(r.unwrap().action, Action::LaunchNew)),
        "tag_non_compliant_key" => (base, |r| {
            let events = r.unwrap().events;
            assert_eq!(
                events.last().map(String::as_str),
                Some(
                    "Non-compliant tag keys like ['my tag&'] are deprecated. Allowed characters: \
                      alpha-numeric, '_', '-', '.'. Tag keys can also contain a namespace section, \
                      separated by a '/'. Each section must have <= 63 characters."
                )
            );
        }),
        other => panic!("hostile guest {other:?} has no expectation: add one to tests/sandbox.rs"),
    }
}

/// The deadline of the sleeping guests: they must fail within it plus 100 ms.
const SLEEP_DEADLINE: Duration = Duration::from_secs(2);

fn assert_invalid(r: Result<runretry::Decision, Error>, wanted: &str) {
    match r {
        Err(Error::InvalidOutput { reason }) => assert!(reason.contains(wanted), "{reason}"),
        other => panic!("expected invalid output ({wanted}), got {other:?}"),
    }
}

/// The case a hostile guest is run on: example 01, or one that sets up the misbehaviour.
fn case_for(feature: &str) -> Case {
    let mut case = case();
    if feature == "resubmit_started" {
        // run-B is an automatic retry of run-A that has already started.
        case.run.group = vec![
            serde_json::from_value(serde_json::json!({"run_id": "run-A", "status": "FAILURE"})).unwrap(),
            serde_json::from_value(serde_json::json!({
                "run_id": "run-B", "parent_run_id": "run-A", "status": "STARTED",
                "tags": {"dagster/retry_number": "1"}
            }))
            .unwrap(),
        ];
    }
    case
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
            Err(Error::InvalidComponent { reason, .. }) => assert!(reason.contains(import), "{reason}"),
            other => panic!("{feature} must be refused at load time, got {:?}", other.map(|p| p.name().to_string())),
        }
        return;
    }
    let (limits, check) = expectation(feature);
    let deadline = limits.deadline;
    let sandbox = Sandbox::new(limits).unwrap();
    let policy = sandbox.load_bytes(feature, &bytes).unwrap();
    let hostile_case = case_for(feature);
    let started = Instant::now();
    let first = policy.decide(&hostile_case);
    // Contained within its deadline (plus slack for a loaded CI machine; a sleeper gets none:
    // its sleep must never hold the host)...
    let slack = if deadline == SLEEP_DEADLINE { Duration::from_millis(100) } else { Duration::from_secs(5) };
    assert!(started.elapsed() < deadline + slack, "{feature} took {:?}", started.elapsed());
    // ...with the same answer every time: clocks and randomness are a function of the case...
    let second = policy.decide(&hostile_case);
    assert_eq!(format!("{first:?}"), format!("{second:?}"), "{feature} answered differently on the same case");
    check(first);
    // Whatever it answers to select-steps, through either interface, its text reaches the host
    // clipped (a refusal or a guest's error was printed whole).
    for policy in [policy.clone(), policy.typed_calls()] {
        let shown = match policy.select_steps(&hostile_case.run, Strategy::FromFailure) {
            Ok(answer) => serde_json::to_string(&answer).unwrap(),
            Err(error) => error.to_string(),
        };
        assert!(shown.len() < 4 * runretry::text::MAX_GUEST_TEXT_BYTES, "{feature}: {} bytes shown", shown.len());
    }
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
        Err(Error::InvalidComponent { reason, .. }) => {
            assert!(
                reason.contains("exports neither runretry:policy/policy@0.4.0 nor runretry:policy/task-policy@0.4.0"),
                "{reason}"
            )
        }
        other => panic!("expected InvalidComponent, got {:?}", other.map(|p| p.name().to_string())),
    }
}

#[test]
fn a_policy_built_against_the_previous_contract_is_refused_naming_both_versions() {
    let sandbox = Sandbox::new(config()).unwrap();
    let bytes = std::fs::read(runretry_test_guests::POLICY_V0_1).unwrap();
    match sandbox.load_bytes("old.wasm", &bytes) {
        Err(Error::InvalidComponent { reason, .. }) => {
            assert!(reason.starts_with("old.wasm: is built against runretry:policy@0.1.0"), "{reason}");
            assert!(reason.contains("implements runretry:policy@0.4.0"), "{reason}");
            assert!(reason.contains("rebuild the policy"), "{reason}");
        }
        other => panic!("expected InvalidComponent, got {:?}", other.map(|p| p.name().to_string())),
    }
}

/// The right names with the wrong types: the export's type check at load refuses it, naming
/// the function, before any call could misread its memory.
#[test]
fn a_policy_with_the_contracts_names_but_other_types_is_refused_at_load() {
    let sandbox = Sandbox::new(config()).unwrap();
    let bytes = std::fs::read(runretry_test_guests::WRONG_TYPES).unwrap();
    match sandbox.load_bytes("wrong-types.wasm", &bytes) {
        Err(Error::InvalidComponent { reason, .. }) => {
            // The interface at fault is named (issue #31: a mistyped `packed` was reported as `policy`).
            assert!(reason.starts_with("wrong-types.wasm: an export does not match the contract"), "{reason}");
            assert!(reason.contains("type-checking `runretry:policy/policy@0.4.0` func `should-retry`"), "{reason}");
        }
        other => panic!("expected InvalidComponent, got {:?}", other.map(|p| p.name().to_string())),
    }
}

/// A mistyped `packed` beside a sound `policy`: refused at load, naming the packed interface
/// (issue #31: it was reported as the `policy` interface).
#[test]
fn a_mistyped_packed_export_is_refused_naming_the_packed_interface() {
    let sandbox = Sandbox::new(config()).unwrap();
    let bytes = std::fs::read(runretry_test_guests::WRONG_PACKED_TYPES).unwrap();
    match sandbox.load_bytes("wrong-packed-types.wasm", &bytes) {
        Err(Error::InvalidComponent { reason, .. }) => {
            assert!(reason.starts_with("wrong-packed-types.wasm: an export does not match the contract"), "{reason}");
            assert!(reason.contains("type-checking `runretry:policy/packed@0.4.0` func `should-retry`"), "{reason}");
            assert!(!reason.contains("runretry:policy/policy@"), "{reason}");
        }
        other => panic!("expected InvalidComponent, got {:?}", other.map(|p| p.name().to_string())),
    }
}

/// The contract promises a policy a consistent plan: a case built in code is checked as a
/// case read from JSON is, before any guest sees it.
#[test]
fn a_case_built_in_code_is_checked_before_the_policy_sees_it() {
    let policy = Sandbox::new(config()).unwrap().load_default().unwrap();
    let mut bad = case();
    bad.run.steps[0].upstream.push("no_such_step".into());
    match policy.decide(&bad) {
        Err(Error::BadInput { what, .. }) => {
            assert!(what.contains("run.steps[0].upstream[") && what.contains("no_such_step"), "{what}")
        }
        other => panic!("expected BadInput, got {other:?}"),
    }
    let mut bad = case();
    bad.run.steps[0].required_keys.push("not_its_own".into());
    assert!(matches!(policy.select_steps(&bad.run, Strategy::FromFailure), Err(Error::BadInput { .. })));
}

#[test]
fn core_module_and_random_bytes_are_refused() {
    let sandbox = Sandbox::new(config()).unwrap();
    let refusal = |bytes: &[u8]| match sandbox.load_bytes("x.wasm", bytes) {
        Err(Error::InvalidComponent { reason, .. }) => reason,
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
    let panicking = deployed(&sandbox, "panic", OnPolicyError::GiveUp);
    let decision = panicking.decide(&case()).unwrap();
    assert_eq!(decision.action, Action::None);
    assert!(decision.events[0].contains("guest trap"), "{:?}", decision.events);
}

#[test]
fn default_fallback_decides_with_the_embedded_policy_and_says_so() {
    let sandbox = Sandbox::new(config()).unwrap();
    let decision = deployed(&sandbox, "panic", OnPolicyError::Default).decide(&case()).unwrap();
    assert_eq!(decision.action, Action::LaunchNew);
    assert!(decision.events[0].contains("decided with the default policy instead"), "{:?}", decision.events);
    assert!(deployed(&sandbox, "panic", OnPolicyError::Fail).decide(&case()).is_err());
}

/// A hostile guest deployed with a failure mode.
fn deployed(sandbox: &Sandbox, feature: &str, mode: OnPolicyError) -> Deployment {
    Deployment::load(sandbox, Some(hostile_path(feature).as_ref()), mode).unwrap()
}

fn hostile_path(feature: &str) -> String {
    runretry_test_guests::hostile(feature).to_string()
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

/// A sleeping guest ends in DeadlineExceeded within the deadline plus 100 ms in select-steps
/// too, and the default fallback then decides (it used to hold the host for the whole hour).
#[test]
fn a_sleeping_guest_cannot_hold_select_steps_or_the_fallback() {
    let sandbox = Sandbox::new(SandboxConfig { deadline: SLEEP_DEADLINE, ..config() }).unwrap();
    let sleeper = sandbox.load_file(hostile_path("sleep_an_hour").as_ref()).unwrap();
    // Loaded (compiled) before the clock starts: what is timed is the two calls alone.
    let deployment = deployed(&sandbox, "sleep_an_hour", OnPolicyError::Default);
    let started = Instant::now();
    let selection = sleeper.select_steps(&case().run, runretry::Strategy::FromFailure);
    assert!(matches!(selection, Err(Error::DeadlineExceeded { .. })), "{selection:?}");
    let decision = deployment.decide(&case()).unwrap();
    assert_eq!(decision.action, Action::LaunchNew);
    assert!(decision.events[0].contains("deadline exceeded"), "{:?}", decision.events);
    assert!(started.elapsed() < SLEEP_DEADLINE + Duration::from_millis(100), "took {:?}", started.elapsed());
}

/// Randomness is a function of the case: seeded from the run id, so another run id draws
/// other numbers, and a warm instance draws the same as a fresh one.
#[test]
fn randomness_is_seeded_from_the_run_id() {
    let sandbox = Sandbox::new(config()).unwrap();
    let policy = sandbox.load_file(hostile_path("read_random").as_ref()).unwrap();
    let first = policy.decide(&case()).unwrap().reason;
    let mut other = case();
    other.run.run_id = "run-Z".into();
    other.run.group = Run::new("run-Z", RunStatus::Failure).group;
    assert_ne!(policy.decide(&other).unwrap().reason, first);
    // A warm instance reseeds every call (std caches its hash keys in the guest, so only the
    // first call of a warm instance is comparable here).
    let mut warm = policy.warm().unwrap();
    assert_eq!(warm.decide(&other).unwrap().reason, policy.decide(&other).unwrap().reason);
}

/// Errors keep their cause chain: a guest's exit and an oversized random request say what
/// happened, not just "error while executing at wasm backtrace".
#[test]
fn errors_keep_their_cause_chain() {
    use std::error::Error as _;
    let sandbox = Sandbox::new(config()).unwrap();
    let policy = sandbox.load_file(hostile_path("random_huge").as_ref()).unwrap();
    let error = policy.decide(&case()).unwrap_err();
    let root = error.root_cause().expect("a cause").to_string();
    assert!(root.contains("asked for 1099511627776 random bytes"), "{root}");
    let mut chain = 0;
    let mut source = error.source();
    while let Some(cause) = source {
        chain += 1;
        source = cause.source();
    }
    assert!(chain >= 1, "the cause is reachable through source()");
}

/// The wall clock reads the case's `failure.now` (contract 0.3.0): decisions stay a function of
/// the case, and a policy can reason about time of day or age. Without it, the fixed instant.
#[test]
fn the_wall_clock_reads_the_failures_time() {
    let sandbox = Sandbox::new(config()).unwrap();
    let policy = sandbox.load_file(std::path::Path::new(runretry_test_guests::hostile("read_clocks"))).unwrap();
    let mut case = case();
    case.failure.now = Some(1_764_803_600.25);
    let reason = policy.decide(&case).unwrap().reason;
    assert!(reason.starts_with("wall 1764803600.250000000 elapsed "), "{reason}");
    let mut warm = policy.warm().unwrap();
    assert!(warm.decide(&case).unwrap().reason.starts_with("wall 1764803600.250000000 "));
    case.failure.now = None;
    assert!(warm.decide(&case).unwrap().reason.starts_with("wall 946684800.000000000 "), "the next call is reset");
    case.failure.now = Some(-1.0);
    let refused = policy.decide(&case).unwrap_err();
    assert!(refused.is_bad_input() && refused.to_string().contains("failure.now"), "{refused}");
}
