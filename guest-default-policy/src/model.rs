//! Plain Rust mirrors of the WIT records (`wit/policy.wit`), so the policy logic can be unit
//! tested, benchmarked natively and reused by custom policies without any Wasm in the way.

/// An ordered tag map: `(key, value)` pairs with unique keys.
pub type Tags = Vec<(String, String)>;

/// Look up a tag by key.
pub fn tag<'a>(tags: &'a Tags, key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Set a tag, replacing an existing value in place (so merge order is kept).
pub fn set_tag(tags: &mut Tags, key: &str, value: &str) {
    match tags.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value.to_string(),
        None => tags.push((key.to_string(), value.to_string())),
    }
}

/// A run's lifecycle status.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

impl RunStatus {
    /// Dagster's spelling, e.g. `NOT_STARTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "QUEUED",
            RunStatus::NotStarted => "NOT_STARTED",
            RunStatus::Managed => "MANAGED",
            RunStatus::Starting => "STARTING",
            RunStatus::Started => "STARTED",
            RunStatus::Success => "SUCCESS",
            RunStatus::Failure => "FAILURE",
            RunStatus::Canceling => "CANCELING",
            RunStatus::Canceled => "CANCELED",
        }
    }
}

/// What the parent run's event log says about a step or a mapped instance.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepStatus {
    Success,
    Failure,
    Skipped,
    InProgress,
    NotStarted,
    ResourceInitFailure,
    /// An unresolved dynamic step `name[?]`; its instances carry the status.
    Mapped,
}

/// One step of the execution plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// `name`, `name[?]` or `name[k]`.
    pub key: String,
    /// Plan keys this step depends on.
    pub upstream: Vec<String>,
    /// The step's status.
    pub status: StepStatus,
    /// For a mapped step: `(mapping_key, status)` of each logged instance.
    pub instances: Vec<(String, StepStatus)>,
}

impl Step {
    /// A plain step with the given upstream keys.
    pub fn new(key: &str, upstream: &[&str], status: StepStatus) -> Self {
        Step {
            key: key.to_string(),
            upstream: upstream.iter().map(|u| u.to_string()).collect(),
            status,
            instances: Vec::new(),
        }
    }
}

/// One run of the re-execution group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupMember {
    /// Its run id.
    pub run_id: String,
    /// The run it re-executes.
    pub parent_run_id: Option<String>,
    /// Its tags.
    pub tags: Tags,
    /// Its status, when known.
    pub status: Option<RunStatus>,
    /// False when the run was deleted.
    pub exists: bool,
}

/// A backfill's status.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

impl BackfillStatus {
    /// Dagster's spelling, e.g. `COMPLETED_SUCCESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillStatus::Requested => "REQUESTED",
            BackfillStatus::Canceling => "CANCELING",
            BackfillStatus::Failing => "FAILING",
            BackfillStatus::Completed => "COMPLETED",
            BackfillStatus::Failed => "FAILED",
            BackfillStatus::Canceled => "CANCELED",
            BackfillStatus::CompletedSuccess => "COMPLETED_SUCCESS",
            BackfillStatus::CompletedFailed => "COMPLETED_FAILED",
        }
    }

    /// `BULK_ACTION_TERMINAL_STATUSES`: a backfill in one of these no longer takes retries.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            BackfillStatus::Requested | BackfillStatus::Canceling | BackfillStatus::Failing
        )
    }
}

/// The backfill named by the run's `dagster/backfill` tag.
#[derive(Clone, Debug, PartialEq)]
pub struct Backfill {
    /// Its id.
    pub id: String,
    /// False when it was deleted.
    pub exists: bool,
    /// Its status.
    pub status: BackfillStatus,
}

/// The failed (parent) run.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Its id.
    pub run_id: String,
    /// Its status.
    pub status: RunStatus,
    /// Its tags.
    pub tags: Tags,
    /// Root of its group; `None` for an original run.
    pub root_run_id: Option<String>,
    /// The run it re-executes; `None` for an original run.
    pub parent_run_id: Option<String>,
    /// The run group, root and the run itself included, in creation order.
    pub group: Vec<GroupMember>,
    /// The execution plan.
    pub steps: Vec<Step>,
    /// The run's own step selection; `None` is the whole job.
    pub step_keys_to_execute: Option<Vec<String>>,
    /// The job definition's tags.
    pub job_tags: Tags,
    /// The backfill named by `dagster/backfill`.
    pub backfill: Option<Backfill>,
}

impl Run {
    /// A minimal original run with the given status, for tests and examples.
    pub fn new(run_id: &str, status: RunStatus) -> Self {
        Run {
            run_id: run_id.to_string(),
            status,
            tags: Vec::new(),
            root_run_id: None,
            parent_run_id: None,
            group: Vec::new(),
            steps: Vec::new(),
            step_keys_to_execute: None,
            job_tags: Vec::new(),
            backfill: None,
        }
    }
}

/// Dagster's `RunFailureReason`.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureReason {
    StepFailure,
    RunException,
    UnexpectedTermination,
    JobInitializationFailure,
    StartTimeout,
    RunWorkerRestart,
    Unknown,
    /// A value this contract does not know, verbatim.
    Other(String),
}

impl FailureReason {
    /// Parse Dagster's spelling; anything else becomes `Other`.
    pub fn parse(value: &str) -> Self {
        match value {
            "STEP_FAILURE" => FailureReason::StepFailure,
            "RUN_EXCEPTION" => FailureReason::RunException,
            "UNEXPECTED_TERMINATION" => FailureReason::UnexpectedTermination,
            "JOB_INITIALIZATION_FAILURE" => FailureReason::JobInitializationFailure,
            "START_TIMEOUT" => FailureReason::StartTimeout,
            "RUN_WORKER_RESTART" => FailureReason::RunWorkerRestart,
            "UNKNOWN" => FailureReason::Unknown,
            other => FailureReason::Other(other.to_string()),
        }
    }

    /// Dagster's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            FailureReason::StepFailure => "STEP_FAILURE",
            FailureReason::RunException => "RUN_EXCEPTION",
            FailureReason::UnexpectedTermination => "UNEXPECTED_TERMINATION",
            FailureReason::JobInitializationFailure => "JOB_INITIALIZATION_FAILURE",
            FailureReason::StartTimeout => "START_TIMEOUT",
            FailureReason::RunWorkerRestart => "RUN_WORKER_RESTART",
            FailureReason::Unknown => "UNKNOWN",
            FailureReason::Other(s) => s,
        }
    }
}

/// The failure being handled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Failure {
    /// The recorded reason, if any.
    pub reason: Option<FailureReason>,
    /// Free text for custom policies.
    pub message: Option<String>,
}

/// The deployment's `run_retries` block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Run retries are on.
    pub enabled: bool,
    /// Default budget per run group.
    pub max_retries: i64,
    /// Retry step failures too.
    pub retry_on_asset_or_op_failure: bool,
}

impl Default for Config {
    /// Dagster's defaults when the block is absent.
    fn default() -> Self {
        Config { enabled: false, max_retries: 0, retry_on_asset_or_op_failure: true }
    }
}

/// Dagster's `ReexecutionStrategy`.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    AllSteps,
    FromFailure,
    FromAssetFailure,
}

impl Strategy {
    /// Exact, case-sensitive member name, as the `dagster/retry_strategy` tag is read.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ALL_STEPS" => Some(Strategy::AllSteps),
            "FROM_FAILURE" => Some(Strategy::FromFailure),
            "FROM_ASSET_FAILURE" => Some(Strategy::FromAssetFailure),
            _ => None,
        }
    }

    /// The member name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::AllSteps => "ALL_STEPS",
            Strategy::FromFailure => "FROM_FAILURE",
            Strategy::FromAssetFailure => "FROM_ASSET_FAILURE",
        }
    }
}

/// What the orchestrator does.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    LaunchNew,
    ResubmitExisting,
    None,
}

/// The complete decision (case-format §2).
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// The new run's retry number, when launching.
    pub retry_number: Option<u32>,
    /// The strategy used, once the policy got that far.
    pub strategy: Option<Strategy>,
    /// Sorted step keys of the new run, when launching.
    pub steps: Option<Vec<String>>,
    /// The new run's tags.
    pub new_run_tags: Tags,
    /// Tags to write on the failed run.
    pub failed_run_tags: Tags,
    /// The run to resubmit.
    pub resubmit_run_id: Option<String>,
    /// Seconds to wait before launching.
    pub delay_seconds: f64,
    /// Engine events, in order.
    pub events: Vec<String>,
    /// Why, in one sentence.
    pub reason: String,
}
