//! Hostile policies for the sandbox tests: each feature misbehaves in one way inside
//! `should-retry` (and `select-steps`). Built once per feature by tests/artifacts.

use std::hint::black_box;

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
    decision("no hostile feature selected".into())
}

impl Policy for Hostile {
    fn should_retry(run: &Run, _failure: &Failure, _config: &Config) -> Decision {
        misbehave(run)
    }

    fn select_steps(run: &Run, _strategy: Strategy) -> Result<Vec<String>, String> {
        #[cfg(feature = "unknown_steps")]
        return Ok(vec!["no_such_step".to_string()]);
        #[cfg(feature = "duplicate_steps")]
        return Ok(run.steps.iter().chain(run.steps.iter()).map(|s| s.key.clone()).collect());
        Ok(vec![misbehave(run).reason])
    }
}

export_policy!(Hostile);
