//! What runretry answers (case-format §2 and §3), in JSON-ready form.

use serde::{Deserialize, Serialize};

use crate::case::Tags;

/// What the orchestrator does.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    LaunchNew,
    ResubmitExisting,
    None,
}

/// Which steps a retry re-runs.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[clap(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Strategy {
    AllSteps,
    FromFailure,
    FromAssetFailure,
}

/// The complete decision for a failed run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// True iff `action` is `LAUNCH_NEW`.
    pub retry: bool,
    /// The new run's `dagster/retry_number`.
    pub retry_number: Option<u32>,
    /// The strategy used, or null when the policy never got that far.
    pub strategy: Option<Strategy>,
    /// Sorted step keys the new run executes; null when not retrying.
    pub steps: Option<Vec<String>>,
    /// The new run's full tag map, except `dagster/code_location`.
    pub new_run_tags: Tags,
    /// Tags to write on the failed run.
    pub failed_run_tags: Tags,
    /// The run to resubmit for `RESUBMIT_EXISTING`.
    pub resubmit_run_id: Option<String>,
    /// Seconds to wait before launching.
    pub delay_seconds: f64,
    /// Engine events and warnings to log, in order.
    pub events: Vec<String>,
    /// Why, in one sentence.
    pub reason: String,
}

impl Decision {
    /// A decision not to retry, for fallbacks (`--on-policy-error give-up`).
    pub fn give_up(events: Vec<String>, reason: String) -> Self {
        Decision {
            action: Action::None,
            retry: false,
            retry_number: None,
            strategy: None,
            steps: None,
            new_run_tags: Tags::new(),
            failed_run_tags: Tags::new(),
            resubmit_run_id: None,
            delay_seconds: 0.0,
            events,
            reason,
        }
    }
}

/// The answer of `select-steps`: the steps, or the policy's refusal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Selection {
    /// The steps a re-execution runs.
    Steps {
        /// The strategy asked for.
        strategy: Strategy,
        /// Sorted step keys.
        steps: Vec<String>,
    },
    /// Why the run cannot be re-executed that way.
    Refused {
        /// The strategy asked for.
        strategy: Strategy,
        /// The policy's message.
        error: String,
    },
}
