//! The JSON case format (case-format.md §1): what a user or orchestrator hands to runretry.
//!
//! Parsing reports the JSON path of a bad field (`run.steps[3].status`); [`Case::validate`]
//! then checks what types cannot: unique step keys, upstream keys that exist in the plan.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An ordered tag map; values are strings, as Dagster stores them.
pub type Tags = IndexMap<String, String>;

/// One case: the deployment's config, the failed run, and the failure.
/// Unknown top-level keys (a conformance case's `name`, `expect`, ...) are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The deployment's `run_retries` block.
    #[serde(default)]
    pub config: Config,
    /// The failed run.
    pub run: Run,
    /// The failure being handled.
    #[serde(default)]
    pub failure: Failure,
}

/// The `run_retries` block (case-format §1, defaults as Dagster's when absent).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run retries are on.
    #[serde(default)]
    pub enabled: bool,
    /// Default budget per run group; may be negative.
    #[serde(default)]
    pub max_retries: i64,
    /// Retry runs that failed because a step failed.
    #[serde(default = "default_true")]
    pub retry_on_asset_or_op_failure: bool,
}

fn default_true() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Config { enabled: false, max_retries: 0, retry_on_asset_or_op_failure: true }
    }
}

/// A run's status, in Dagster's spelling.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Queued,
    NotStarted,
    Managed,
    Starting,
    Started,
    Success,
    Failure,
    Canceling,
    Canceled,
}

/// A step's (or mapped instance's) status from the parent's event log.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepStatus {
    Success,
    Failure,
    Skipped,
    InProgress,
    NotStarted,
    ResourceInitFailure,
    Mapped,
}

/// A backfill's status.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackfillStatus {
    Requested,
    Canceling,
    Failing,
    Completed,
    Failed,
    Canceled,
    CompletedSuccess,
    CompletedFailed,
}

/// The failed (parent) run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Its id.
    pub run_id: String,
    /// Its status.
    pub status: RunStatus,
    /// Its tags before the failure is processed.
    #[serde(default)]
    pub tags: Tags,
    /// The root of its group; null for an original run.
    #[serde(default)]
    pub root_run_id: Option<String>,
    /// The run it re-executes; null for an original run.
    #[serde(default)]
    pub parent_run_id: Option<String>,
    /// The run group in creation order, root and this run included; absent means this run alone.
    #[serde(default)]
    pub group: Option<Vec<GroupMember>>,
    /// The execution plan with per-step status.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The run's own step selection; null means the whole job.
    #[serde(default)]
    pub step_keys_to_execute: Option<Vec<String>>,
    /// Copied to the new run.
    #[serde(default)]
    pub op_selection: Option<Vec<String>>,
    /// The job definition's tags.
    #[serde(default)]
    pub job_tags: Tags,
    /// The backfill named by `dagster/backfill`.
    #[serde(default)]
    pub backfill: Option<Backfill>,
    /// The job's name (informational).
    #[serde(default)]
    pub job: Option<String>,
}

/// One run of the group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupMember {
    /// Its id.
    pub run_id: String,
    /// The run it re-executes.
    #[serde(default)]
    pub parent_run_id: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Tags,
    /// Its status, when known.
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// False when the run was deleted.
    #[serde(default = "default_true")]
    pub exists: bool,
}

/// One plan step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// `name`, `name[?]` or `name[k]`.
    pub key: String,
    /// Plan keys it depends on.
    #[serde(default)]
    pub upstream: Vec<String>,
    /// Its status; `MAPPED` for `name[?]` with `instances`.
    pub status: StepStatus,
    /// Mapping key -> status, for a mapped step.
    #[serde(default)]
    pub instances: Option<IndexMap<String, StepStatus>>,
    /// Informational: a dynamic producer.
    #[serde(default)]
    pub dynamic_output: bool,
    /// Informational: the mapping keys a producer yielded.
    #[serde(default)]
    pub mapping_keys: Vec<String>,
}

/// The backfill named by the run's `dagster/backfill` tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backfill {
    /// Its id.
    pub id: String,
    /// False when it was deleted.
    #[serde(default = "default_true")]
    pub exists: bool,
    /// Its status; null when the backfill no longer exists (a deleted backfill has none).
    #[serde(default)]
    pub status: Option<BackfillStatus>,
}

/// The failure being handled.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// A `RunFailureReason` value, or null. Unknown strings are passed to the policy verbatim.
    #[serde(default)]
    pub reason: Option<String>,
    /// Free text for custom policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Parse JSON into `T`, naming `source` and the JSON path of the first bad field.
pub fn from_json<T: serde::de::DeserializeOwned>(source: &str, text: &str) -> Result<T, Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Error::bad_input(format!("{source}: {inner}"))
        } else {
            Error::bad_input(format!("{source}: {path}: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| Error::bad_input(format!("{source}: trailing characters after the case: {e}")))?;
    Ok(value)
}

impl Case {
    /// Parse and validate a case; `source` names it in errors (a file name, `<stdin>`, `line 3`).
    pub fn from_json(source: &str, text: &str) -> Result<Case, Error> {
        // serde would read a JSON array positionally into the struct: say what is wrong instead.
        if !text.trim_start().starts_with('{') {
            return Err(Error::bad_input(format!("{source}: a case is one JSON object ({{\"run\": ...}})")));
        }
        let case: Case = from_json(source, text)?;
        case.validate().map_err(|e| Error::bad_input(format!("{source}: {e}")))?;
        Ok(case)
    }

    /// Check what the types cannot: step keys are unique and non-empty, every upstream key is a
    /// plan step, and instances appear only on `MAPPED` steps, each with a concrete status.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (i, step) in self.run.steps.iter().enumerate() {
            if step.key.is_empty() {
                return Err(format!("run.steps[{i}].key: empty step key"));
            }
            if !seen.insert(step.key.as_str()) {
                return Err(format!("run.steps[{i}].key: duplicate step key {:?}", step.key));
            }
        }
        for (i, step) in self.run.steps.iter().enumerate() {
            for (j, up) in step.upstream.iter().enumerate() {
                if !seen.contains(up.as_str()) {
                    return Err(format!("run.steps[{i}].upstream[{j}]: {up:?} is not a step of the plan"));
                }
            }
            match (&step.instances, step.status) {
                (Some(_), status) if status != StepStatus::Mapped => {
                    return Err(format!("run.steps[{i}].instances: only a MAPPED step has instances"));
                }
                (Some(instances), _) => {
                    if let Some((k, _)) = instances.iter().find(|(_, s)| **s == StepStatus::Mapped) {
                        return Err(format!("run.steps[{i}].instances.{k}: an instance cannot be MAPPED"));
                    }
                }
                (None, _) => {}
            }
        }
        if let Some(backfill) = &self.run.backfill {
            if backfill.exists && backfill.status.is_none() {
                return Err("run.backfill.status: an existing backfill needs a status (null only with \"exists\": false)".into());
            }
        }
        Ok(())
    }
}

/// Every `RunFailureReason` Dagster 1.13.29 knows.
pub const KNOWN_FAILURE_REASONS: [&str; 7] = [
    "STEP_FAILURE",
    "RUN_EXCEPTION",
    "UNEXPECTED_TERMINATION",
    "JOB_INITIALIZATION_FAILURE",
    "START_TIMEOUT",
    "RUN_WORKER_RESTART",
    "UNKNOWN",
];
