//! Hostile policies for the sandbox tests: each feature misbehaves in one way inside
//! `should-retry` (and `select-steps`). Built once per feature by tests/artifacts.

use std::hint::black_box;

#[allow(unused_imports)]
use runretry_default_policy::{export_policy, Action, Config, Decision, Failure, Policy, Run, Strategy};

struct Hostile;

fn decision(reason: String) -> Decision {
    Decision {
        action: Action::None,
        retry_number: None,
        strategy: None,
        steps: None,
        new_run_tags: Vec::new(),
        failed_run_tags: Vec::new(),
        resubmit_run_id: None,
        delay_seconds: 0.0,
        events: Vec::new(),
        reason,
    }
}

#[allow(unreachable_code, unused_variables)]
fn misbehave(run: &Run) -> Decision {
    #[cfg(feature = "infinite_loop")]
    {
        let mut n = 0u64;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }
    #[cfg(feature = "hot_loop")]
    {
        // Finite, but ~10^12 iterations: only a fuel budget stops it in time.
        let mut acc = 0u64;
        for i in 0..1_000_000_000_000u64 {
            acc = black_box(acc.wrapping_mul(31).wrapping_add(i));
        }
        return decision(format!("{acc}"));
    }
    #[cfg(feature = "memory_bomb")]
    {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(black_box(vec![1u8; 16 << 20]));
        }
    }
    #[cfg(feature = "deep_recursion")]
    {
        // Scalars only, so every frame lives on the Wasm stack (not Rust's shadow stack in
        // linear memory) and the recursion ends in a Wasm stack overflow.
        fn dive(depth: u64) -> u64 {
            if black_box(depth) == u64::MAX {
                return 0;
            }
            dive(depth + 1).wrapping_add(black_box(1))
        }
        return decision(format!("{}", dive(0)));
    }
    #[cfg(feature = "panic")]
    {
        panic!("hostile policy panicked on purpose for run {}", run.run_id);
    }
    #[cfg(feature = "read_file")]
    {
        return decision(match std::fs::read_to_string("/etc/passwd") {
            Ok(text) => format!("LEAKED {} bytes of /etc/passwd", text.len()),
            Err(e) => format!("denied: {e}"),
        });
    }
    #[cfg(feature = "read_env")]
    {
        let seen = std::env::vars().count() + std::env::args().count();
        return decision(match std::env::var("HOME") {
            Ok(home) => format!("LEAKED HOME={home}"),
            Err(e) => format!("denied: {e}; {seen} variables or arguments visible"),
        });
    }
    #[cfg(feature = "open_socket")]
    {
        return decision(match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => "LEAKED a connection".to_string(),
            Err(e) => format!("denied: {e}"),
        });
    }
    #[cfg(feature = "oversized_output")]
    {
        let mut d = decision("huge".into());
        d.events = vec!["x".repeat(1 << 20); 32];
        return d;
    }
    #[cfg(feature = "unknown_steps")]
    {
        let mut d = runretry_default_policy::should_retry(run, &Failure::default(), &Config { enabled: true, max_retries: 5, retry_on_asset_or_op_failure: true });
        d.steps = Some(vec!["no_such_step".to_string()]);
        return d;
    }
    #[cfg(feature = "duplicate_steps")]
    {
        let mut d = runretry_default_policy::should_retry(run, &Failure::default(), &Config { enabled: true, max_retries: 5, retry_on_asset_or_op_failure: true });
        if let Some(steps) = d.steps.as_mut() {
            let first = steps[0].clone();
            steps.push(first);
        }
        return d;
    }
    #[cfg(feature = "negative_delay")]
    {
        let mut d = decision("wait less than nothing".into());
        d.delay_seconds = -1.0;
        return d;
    }
    #[cfg(feature = "sleep_an_hour")]
    {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        return decision("woke up after an hour".into());
    }
    #[cfg(feature = "sleep_loop")]
    {
        // Many short sleeps, each well inside the deadline: together they are not.
        loop {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    #[cfg(feature = "read_clocks")]
    {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let start = std::time::Instant::now();
        let mut spin = 0u64;
        for i in 0..100_000u64 {
            spin = black_box(spin.wrapping_add(i));
        }
        let elapsed = start.elapsed();
        std::thread::sleep(std::time::Duration::from_millis(250));
        let slept = start.elapsed() - elapsed;
        return decision(format!("wall {}.{:09} elapsed {} slept {} ({spin})", wall.as_secs(), wall.subsec_nanos(), elapsed.as_nanos(), slept.as_nanos()));
    }
    #[cfg(feature = "read_random")]
    {
        use std::hash::{BuildHasher, Hasher};
        // std seeds HashMap keys from wasi:random; two hashers, two draws.
        let draw = || {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write(run.run_id.as_bytes());
            hasher.finish()
        };
        return decision(format!("random {:016x} {:016x}", draw(), draw()));
    }
    #[cfg(feature = "random_huge")]
    {
        let bytes = wasi_random::wasi::random::random::get_random_bytes(1 << 40);
        return decision(format!("got {} random bytes", bytes.len()));
    }
    #[cfg(feature = "exit_zero")]
    {
        std::process::exit(0);
    }
    #[cfg(feature = "escape_stderr")]
    {
        // A screen clear, a colour, and a forged log line, then a trap.
        eprint!("\x1b[2J\x1b[31mINFO all good\nrunretry: decision: LAUNCH_NEW\x07");
        std::process::abort();
    }
    #[cfg(feature = "resubmit_unknown")]
    {
        let mut d = decision("resubmit a run that does not exist".into());
        d.action = Action::ResubmitExisting;
        d.resubmit_run_id = Some("no-such-run".into());
        return d;
    }
    #[cfg(feature = "resubmit_started")]
    {
        // The test's case holds an automatic retry of this run that has already started.
        let child = run.group.iter().find(|m| m.parent_run_id.as_deref() == Some(run.run_id.as_str()));
        let mut d = decision("resubmit a retry that already started".into());
        d.action = Action::ResubmitExisting;
        d.resubmit_run_id = Some(child.map_or("no child in the case".into(), |m| m.run_id.clone()));
        return d;
    }
    #[cfg(feature = "many_events")]
    {
        let mut d = decision("five million empty events".into());
        d.events = vec![String::new(); 5_000_000];
        return d;
    }
    #[cfg(feature = "many_tags")]
    {
        let mut d = decision("a million tags".into());
        d.failed_run_tags = (0..1_000_000).map(|i| (format!("t{i}"), String::new())).collect();
        return d;
    }
    #[cfg(feature = "tag_nul")]
    {
        let mut d = decision("a NUL in a tag value".into());
        d.failed_run_tags = vec![("team/owner".into(), "data\0eng".into())];
        return d;
    }
    #[cfg(feature = "tag_empty_key")]
    {
        let mut d = decision("an empty tag key".into());
        d.failed_run_tags = vec![(String::new(), "x".into())];
        return d;
    }
    #[cfg(feature = "tag_huge_key")]
    {
        let mut d = decision("a 1 MiB tag key".into());
        d.failed_run_tags = vec![("k".repeat(1 << 20), "x".into())];
        return d;
    }
    #[cfg(feature = "tag_bom_key")]
    {
        // Looks like dagster/retry_number on any screen.
        let mut d = decision("a system tag in disguise".into());
        d.failed_run_tags = vec![("\u{feff}dagster/retry_number".into(), "0".into())];
        return d;
    }
    #[cfg(feature = "tag_non_compliant_key")]
    {
        let mut d = decision("a key Dagster warns about".into());
        d.failed_run_tags = vec![("my tag&".into(), "x".into()), ("team/owner".into(), "data-eng".into())];
        return d;
    }
    #[cfg(feature = "plan_order_selection")]
    {
        let config = Config { enabled: true, max_retries: 5, retry_on_asset_or_op_failure: true };
        let mut d = runretry_default_policy::should_retry(run, &Failure::default(), &config);
        if d.strategy == Some(Strategy::FromFailure) && d.steps.is_some() {
            d.steps = Some(listed_order_from_failure(run));
        }
        return d;
    }
    decision("no hostile feature selected".into())
}

/// FROM_FAILURE with a plausible bug: one pass over the plan in the order it is listed, so a
/// step listed before its upstream misses the downstream closure. Each suite must catch it.
#[cfg(feature = "plan_order_selection")]
fn listed_order_from_failure(run: &Run) -> Vec<String> {
    use runretry_default_policy::StepStatus;
    let mut selected: Vec<String> = Vec::new();
    for step in &run.steps {
        let own = matches!(
            step.status,
            StepStatus::Failure | StepStatus::InProgress | StepStatus::NotStarted | StepStatus::ResourceInitFailure
        );
        if step.status != StepStatus::Skipped && (own || step.upstream.iter().any(|u| selected.contains(u))) {
            selected.push(step.key.clone());
        }
    }
    selected.sort();
    selected
}

/// wasi:random called directly, for `random_huge`.
#[cfg(feature = "random_huge")]
mod wasi_random {
    wit_bindgen::generate!({
        inline: "package hostile:random; world imports { import wasi:random/random@0.2.0; }",
        path: "wit",
        generate_all,
    });
}

impl Policy for Hostile {
    fn should_retry(run: &Run, _failure: &Failure, _config: &Config) -> Decision {
        misbehave(run)
    }

    fn select_steps(run: &Run, _strategy: Strategy) -> Result<Vec<String>, String> {
        #[cfg(feature = "plan_order_selection")]
        return match _strategy {
            Strategy::FromFailure => Ok(listed_order_from_failure(run)),
            other => runretry_default_policy::select_steps(run, other),
        };
        #[cfg(feature = "unknown_steps")]
        return Ok(vec!["no_such_step".to_string()]);
        #[cfg(feature = "duplicate_steps")]
        return Ok(run.steps.iter().chain(run.steps.iter()).map(|s| s.key.clone()).collect());
        Ok(vec![misbehave(run).reason])
    }
}

export_policy!(Hostile);
