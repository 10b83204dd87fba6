//! A policy built against the previous contract, `runretry:policy@0.1.0` (a frozen copy of its
//! WIT is in wit/policy-0.1.0): it must be refused with a message naming both versions.

wit_bindgen::generate!({ world: "retry-policy", path: "wit/policy-0.1.0" });

use exports::runretry::policy::policy::Guest;
use runretry::policy::types::{Action, Config, Decision, Failure, RetryStrategy, Run};

struct OldPolicy;

impl Guest for OldPolicy {
    fn should_retry(_run: Run, _failure: Failure, _config: Config) -> Decision {
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
            reason: "a 0.1.0 policy never retries".to_string(),
        }
    }

    fn select_steps(_run: Run, _strategy: RetryStrategy) -> Result<Vec<String>, String> {
        Err("a 0.1.0 policy selects nothing".to_string())
    }
}

export!(OldPolicy);

fn main() {}
