//! Dagster's run-retry semantics, plus exponential backoff between retries.
//!
//! The decision is the default policy's; this policy only fills in `delay_seconds` for a
//! `LAUNCH_NEW`: `base * 2^(retry_number - 1)`, capped, with jitter derived from the run id, so
//! the same run always gets the same delay (no clock, no random import) while a burst of failed
//! runs is spread out. Configured per run (or per job, through job tags) by tags:
//!
//! | tag | default | meaning |
//! |---|---|---|
//! | `runretry/backoff_base_seconds` | 30 | delay before the first retry |
//! | `runretry/backoff_max_seconds` | 900 | cap on any delay |
//! | `runretry/backoff_jitter` | 0.2 | spread, a fraction of the delay: 0.2 is ±10% |

use runretry_kit::{
    export_policy, number_tag, Action, Decision, Failure, Policy, Run, RunRetries, Selection, Strategy,
};

// ANCHOR: backoff
/// A number in [0, 1) fixed by the run id (FNV-1a): the same run always gets the same jitter.
fn unit_hash(run_id: &str) -> f64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in run_id.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// `base * 2^(n-1)`, capped, jittered by ±jitter/2, capped again.
pub fn backoff_seconds(run: &Run, retry_number: u32, events: &mut Vec<String>) -> f64 {
    let base = number_tag(&run.tags, "runretry/backoff_base_seconds", 30.0, 0.0, events);
    let max = number_tag(&run.tags, "runretry/backoff_max_seconds", 900.0, 0.0, events);
    let jitter = number_tag(&run.tags, "runretry/backoff_jitter", 0.2, 0.0, events).min(1.0);
    let exponent = retry_number.saturating_sub(1).min(60) as i32;
    let delay = (base * 2f64.powi(exponent)).min(max);
    let spread = 1.0 + jitter * (unit_hash(&run.run_id) - 0.5);
    (delay * spread).min(max).max(0.0)
}
// ANCHOR_END: backoff

struct BackoffPolicy;

// ANCHOR: policy
impl Policy for BackoffPolicy {
    fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision {
        let mut decision = runretry_default_policy::should_retry(run, failure, config);
        if decision.action == Action::LaunchNew {
            let retry_number = decision.retry_number.unwrap_or(1);
            let delay = backoff_seconds(run, retry_number, &mut decision.events);
            decision.delay_seconds = delay;
            decision.reason =
                format!("{}; retry {retry_number} waits {delay:.1} s (exponential backoff)", decision.reason);
        }
        decision
    }

    fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String> {
        runretry_default_policy::select_steps(run, strategy)
    }
}

export_policy!(BackoffPolicy);
// ANCHOR_END: policy

// The policy is plain Rust: its tests run natively (`cargo test`), no Wasm involved.
#[cfg(test)]
mod tests {
    use super::*;
    use runretry_kit::{FailureReason, RunStatus, Step, StepStatus};

    fn failed_run(retry_number: usize) -> Run {
        let mut run = Run::new("run-A", RunStatus::Failure);
        run.steps = vec![Step::new("op", &[], StepStatus::Failure)];
        for n in 1..retry_number {
            let mut member = run.group[0].clone();
            member.run_id = format!("retry-{n}");
            member.tags = vec![("dagster/retry_number".into(), n.to_string())];
            run.group.push(member);
        }
        run.tags.push(("runretry/backoff_jitter".into(), "0".into()));
        run
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let mut events = Vec::new();
        let delays: Vec<f64> = (1..=7).map(|n| backoff_seconds(&failed_run(1), n, &mut events)).collect();
        assert_eq!(delays, [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0]);
        assert!(events.is_empty());
    }

    #[test]
    fn a_retry_waits_and_says_why() {
        let config =
            RunRetries { enabled: true, max_retries: 3, retry_on_asset_or_op_failure: true, ..RunRetries::default() };
        let failure = Failure { reason: Some(FailureReason::StepFailure), ..Failure::default() };
        let decision = BackoffPolicy::should_retry(&failed_run(2), &failure, &config);
        assert_eq!((decision.action, decision.retry_number), (Action::LaunchNew, Some(2)));
        assert_eq!(decision.delay_seconds, 60.0);
        assert!(decision.reason.ends_with("retry 2 waits 60.0 s (exponential backoff)"), "{}", decision.reason);
    }

    #[test]
    fn a_bad_tag_falls_back_to_the_default_and_says_so() {
        let mut run = failed_run(1);
        run.tags.push(("runretry/backoff_base_seconds".into(), "soon".into()));
        let mut events = Vec::new();
        assert_eq!(backoff_seconds(&run, 1, &mut events), 30.0);
        assert_eq!(events.len(), 1);
    }
}
