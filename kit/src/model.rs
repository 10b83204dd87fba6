//! The contract's data, field for field as `wit/policy.wit` declares it (kebab-case there,
//! snake_case here). With the `serde` feature these types also read and write the JSON case
//! format (`docs/case-format.md`, module `json`). With the `wasmtime` feature they are the
//! host's component-model values (`ComponentType`, `Lift`, `Lower`: the multi-word names carry
//! their WIT spelling); in a guest, wit-bindgen lifts and lowers them directly (`export`).

#[cfg(model_serde)]
use serde::{Deserialize, Serialize};
#[cfg(feature = "wasmtime")]
use wasmtime::component::{ComponentType, Lift, Lower};

/// An ordered tag map: `(key, value)` pairs, in order, exactly as received or returned.
/// Duplicates are kept, so whoever checks a decision sees what the policy really returned.
pub type Tags = Vec<(String, String)>;

/// Look up a tag by key (the first, should a list hold duplicates).
pub fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Set a tag, replacing an existing value in place (so merge order is kept).
pub fn set_tag(tags: &mut Tags, key: &str, value: &str) {
    match tags.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value.to_string(),
        None => tags.push((key.to_string(), value.to_string())),
    }
}

/// A tag map being merged, later values winning in place (`set_tag`'s rule). Small maps (most
/// runs carry tens of tags) are searched in place; past [`TagMerge::INDEXED_FROM`] tags the keys
/// are indexed, so merging n tags costs O(n), where `set_tag` alone costs O(n²) (a run with
/// 30,000 tags took seconds). The index hashes with fixed keys, so a policy stays deterministic.
#[derive(Clone, Debug, Default)]
pub struct TagMerge {
    tags: Tags,
    index: Option<std::collections::HashMap<String, usize, std::hash::BuildHasherDefault<std::hash::DefaultHasher>>>,
}

impl TagMerge {
    /// Tags searched in place below this count; indexed from it on.
    pub const INDEXED_FROM: usize = 64;

    /// Start from `tags`, merged in order: a key listed twice keeps its first place and its
    /// last value, as a Python dict built from the pairs would.
    pub fn new(tags: &[(String, String)]) -> Self {
        let mut merge = TagMerge { tags: Vec::with_capacity(tags.len()), index: None };
        for (key, value) in tags {
            merge.set(key, value);
        }
        merge
    }

    /// Set a tag, replacing an existing value in place.
    pub fn set(&mut self, key: &str, value: &str) {
        if self.index.is_none() && self.tags.len() >= Self::INDEXED_FROM {
            let index = self.tags.iter().enumerate().map(|(place, (key, _))| (key.clone(), place)).collect();
            self.index = Some(index);
        }
        let found = match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.tags.iter().position(|(k, _)| k == key),
        };
        match found {
            Some(place) => self.tags[place].1 = value.to_string(),
            None => {
                if let Some(index) = &mut self.index {
                    index.insert(key.to_string(), self.tags.len());
                }
                self.tags.push((key.to_string(), value.to_string()));
            }
        }
    }

    /// The merged tags, in merge order.
    pub fn into_tags(self) -> Tags {
        self.tags
    }
}

/// A text that spells no variant of one of the contract's enums (their `FromStr`): it names the
/// enum and its spellings, e.g. `"LATER" is not a strategy (one of ALL_STEPS, FROM_FAILURE, ...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownSpelling {
    pub(crate) type_name: &'static str,
    pub(crate) text: String,
    pub(crate) spellings: &'static [&'static str],
}

impl std::fmt::Display for UnknownSpelling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `RunStatus` reads "run status".
        let mut noun = String::new();
        for (i, c) in self.type_name.char_indices() {
            if c.is_uppercase() && i > 0 {
                noun.push(' ');
            }
            noun.push(c.to_ascii_lowercase());
        }
        write!(f, "{:?} is not a {noun} (one of {})", self.text, self.spellings.join(", "))
    }
}

impl std::error::Error for UnknownSpelling {}

/// Declares a fieldless enum with the orchestrator's spelling of each variant (`as_str`,
/// `parse`, `ALL`); the spelling is also its JSON form. (The task model uses it too.)
macro_rules! spelled_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal / $wit:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(model_serde, derive(Serialize))]
        #[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(enum))]
        #[repr(u8)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[cfg_attr(model_serde, serde(rename = $text))]
                #[cfg_attr(feature = "wasmtime", component(name = $wit))]
                $variant,
            )*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// wit-bindgen's lifting of the WIT enum, whose cases are declared in this order.
            #[doc(hidden)]
            #[cfg(target_arch = "wasm32")]
            pub unsafe fn _lift(val: u8) -> Self {
                Self::ALL[usize::from(val)]
            }

            /// Dagster's spelling, e.g. `NOT_STARTED`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The variant Dagster spells `text` (exact, case-sensitive), if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        /// Only Dagster's spelling reads: serde's derive would also take a variant's index
        /// (MessagePack's compact form), and JSON's `5` or `null` would fail as "expected value"
        /// naming no field. Both are refused here as a wrong type, which the path names.
        #[cfg(model_serde)]
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Spelling;
                impl serde::de::Visitor<'_> for Spelling {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "one of {}", [$($text),*].join(", "))
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        $name::parse(text).ok_or_else(|| E::unknown_variant(text, &[$($text),*]))
                    }
                }
                deserializer.deserialize_str(Spelling)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownSpelling;

            /// [`parse`](Self::parse), with an error that names the spellings there are.
            fn from_str(text: &str) -> Result<Self, UnknownSpelling> {
                $name::parse(text).ok_or_else(|| UnknownSpelling {
                    type_name: stringify!($name),
                    text: text.to_string(),
                    spellings: &[$($text),*],
                })
            }
        }
    };
}

spelled_enum! {
    /// A run's lifecycle status (Dagster's `DagsterRunStatus`).
    RunStatus {
        /// Waiting in the run queue.
        Queued = "QUEUED" / "queued",
        /// Created but never submitted.
        NotStarted = "NOT_STARTED" / "not-started",
        /// Managed outside the orchestrator.
        Managed = "MANAGED" / "managed",
        /// Launched, worker not yet up.
        Starting = "STARTING" / "starting",
        /// Executing.
        Started = "STARTED" / "started",
        /// Finished successfully.
        Success = "SUCCESS" / "success",
        /// Finished with a failure: the only status Dagster retries.
        Failure = "FAILURE" / "failure",
        /// Termination requested.
        Canceling = "CANCELING" / "canceling",
        /// Terminated.
        Canceled = "CANCELED" / "canceled",
    }
}

spelled_enum! {
    /// What the parent run's event log says about a step or a mapped instance.
    StepStatus {
        /// A STEP_SUCCESS was logged.
        Success = "SUCCESS" / "success",
        /// A STEP_FAILURE was logged.
        Failure = "FAILURE" / "failure",
        /// A STEP_SKIPPED was logged.
        Skipped = "SKIPPED" / "skipped",
        /// Some event was logged, but none of success, failure or skipped: interrupted.
        InProgress = "IN_PROGRESS" / "in-progress",
        /// No event at all.
        NotStarted = "NOT_STARTED" / "not-started",
        /// A step-scoped RESOURCE_INIT_FAILURE was logged; counts as a failure.
        ResourceInitFailure = "RESOURCE_INIT_FAILURE" / "resource-init-failure",
        /// An unresolved dynamic step `name[?]`; its instances carry the status.
        Mapped = "MAPPED" / "mapped",
    }
}

spelled_enum! {
    /// A backfill's status (Dagster's `BulkActionStatus`).
    BackfillStatus {
        /// Still launching runs.
        Requested = "REQUESTED" / "requested",
        /// Being cancelled.
        Canceling = "CANCELING" / "canceling",
        /// Failing.
        Failing = "FAILING" / "failing",
        /// Finished (terminal).
        Completed = "COMPLETED" / "completed",
        /// Failed (terminal).
        Failed = "FAILED" / "failed",
        /// Cancelled (terminal).
        Canceled = "CANCELED" / "canceled",
        /// Finished with every partition successful (terminal).
        CompletedSuccess = "COMPLETED_SUCCESS" / "completed-success",
        /// Finished with some partition failed (terminal).
        CompletedFailed = "COMPLETED_FAILED" / "completed-failed",
    }
}

impl BackfillStatus {
    /// `BULK_ACTION_TERMINAL_STATUSES`: a backfill in one of these no longer takes retries.
    pub fn is_terminal(self) -> bool {
        !matches!(self, BackfillStatus::Requested | BackfillStatus::Canceling | BackfillStatus::Failing)
    }
}

spelled_enum! {
    /// Which steps a retry re-runs (Dagster's `ReexecutionStrategy`).
    Strategy {
        /// Every step of the job.
        AllSteps = "ALL_STEPS" / "all-steps",
        /// Failed, interrupted and never-run steps plus everything downstream.
        FromFailure = "FROM_FAILURE" / "from-failure",
        /// Assets and checks that did not complete (asset jobs only).
        FromAssetFailure = "FROM_ASSET_FAILURE" / "from-asset-failure",
    }
}

spelled_enum! {
    /// The severity of an asset-check evaluation (Dagster's `AssetCheckSeverity`).
    CheckSeverity {
        /// A failure fails the step when the check is blocking.
        Error = "ERROR" / "error",
        /// A failure is a warning.
        Warn = "WARN" / "warn",
    }
}

spelled_enum! {
    /// What the orchestrator does.
    Action {
        /// Create and launch a retry run.
        LaunchNew = "LAUNCH_NEW" / "launch-new",
        /// An automatic retry already exists and never started: submit it again.
        ResubmitExisting = "RESUBMIT_EXISTING" / "resubmit-existing",
        /// Nothing.
        None = "NONE" / "none",
    }
}

/// The status of one resolved instance `name[mapping_key]` of a mapped step.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct MappedInstance {
    /// The mapping key `k` of the instance `name[k]`.
    #[cfg_attr(feature = "wasmtime", component(name = "mapping-key"))]
    pub mapping_key: String,
    /// What the event log says about it; never `Mapped`.
    pub status: StepStatus,
}

/// One step of the parent run's execution plan.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct Step {
    /// `name` (plain), `name[?]` (unresolved mapped) or `name[k]` (resolved); see [`crate::StepKey`].
    pub key: String,
    /// Plan keys this step depends on.
    #[cfg_attr(model_serde, serde(default))]
    pub upstream: Vec<String>,
    /// The step's status; `Mapped` for `name[?]` steps, whose instances carry their own.
    pub status: StepStatus,
    /// For a mapped step: every instance the event log mentions (JSON: `{mapping_key: status}`).
    #[cfg_attr(model_serde, serde(default, with = "crate::json::instances", skip_serializing_if = "Vec::is_empty"))]
    pub instances: Vec<MappedInstance>,
    /// Informational: this step produces a dynamic output.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "crate::json::is_false"))]
    #[cfg_attr(feature = "wasmtime", component(name = "dynamic-output"))]
    pub dynamic_output: bool,
    /// Informational: the mapping keys this producer yielded.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Vec::is_empty"))]
    #[cfg_attr(feature = "wasmtime", component(name = "mapping-keys"))]
    pub mapping_keys: Vec<String>,
    /// Asset keys this step materialises in this run's plan (opaque strings, compared by equality).
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Vec::is_empty"))]
    pub assets: Vec<String>,
    /// Asset-check keys this step evaluates (`"<asset key>:<check name>"`).
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Vec::is_empty"))]
    pub checks: Vec<String>,
    /// Entity keys on required outputs: re-running any key of the step re-runs these.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Vec::is_empty"))]
    #[cfg_attr(feature = "wasmtime", component(name = "required-keys"))]
    pub required_keys: Vec<String>,
    /// Checks of `checks` whose spec is blocking (informational).
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Vec::is_empty"))]
    #[cfg_attr(feature = "wasmtime", component(name = "blocking-checks"))]
    pub blocking_checks: Vec<String>,
    /// False when the step's assets and checks must execute together; `None` when unknown.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Option::is_none"))]
    #[cfg_attr(feature = "wasmtime", component(name = "can-subset"))]
    pub can_subset: Option<bool>,
}

impl Step {
    /// A step with the given upstream keys and nothing else, for tests and examples.
    pub fn new(key: &str, upstream: &[&str], status: StepStatus) -> Self {
        Step {
            key: key.to_string(),
            upstream: upstream.iter().map(|u| u.to_string()).collect(),
            status,
            instances: Vec::new(),
            dynamic_output: false,
            mapping_keys: Vec::new(),
            assets: Vec::new(),
            checks: Vec::new(),
            required_keys: Vec::new(),
            blocking_checks: Vec::new(),
            can_subset: None,
        }
    }

    /// Every entity key of the step: its assets, then its checks.
    pub fn entity_keys(&self) -> impl Iterator<Item = &str> {
        self.assets.iter().chain(&self.checks).map(String::as_str)
    }
}

/// One asset-check evaluation the run logged.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(deny_unknown_fields))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct CheckEvaluation {
    /// The check key, `"<asset key>:<check name>"`.
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// The evaluation's blocking flag; `None` for events older than the flag.
    #[cfg_attr(model_serde, serde(default))]
    pub blocking: Option<bool>,
    /// Its severity, when known (informational).
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Option::is_none"))]
    pub severity: Option<CheckSeverity>,
}

impl CheckEvaluation {
    /// A failed evaluation of a blocking check: its asset must be materialised again.
    pub fn is_blocking_failure(&self) -> bool {
        self.blocking == Some(true) && !self.passed
    }
}

/// One run of the failed run's re-execution group (same root run).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct GroupMember {
    /// Its run id.
    #[cfg_attr(feature = "wasmtime", component(name = "run-id"))]
    pub run_id: String,
    /// The run it re-executes; `None` for the root.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "parent-run-id"))]
    pub parent_run_id: Option<String>,
    /// Its tags.
    #[cfg_attr(model_serde, serde(default, with = "crate::json::tags"))]
    pub tags: Tags,
    /// Its status, when known.
    #[cfg_attr(model_serde, serde(default))]
    pub status: Option<RunStatus>,
    /// False when the run was deleted: not counted, cannot be loaded.
    #[cfg_attr(model_serde, serde(default = "crate::json::yes"))]
    pub exists: bool,
}

/// The backfill named by the run's `dagster/backfill` tag.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct Backfill {
    /// Its id.
    pub id: String,
    /// False when it no longer exists (Dagster does not retry such a run).
    pub exists: bool,
    /// Its status; a backfill that no longer exists reads `Canceled`.
    pub status: BackfillStatus,
}

spelled_enum! {
    /// Who or what launched a run, from Dagster's tags (a retry keeps its root's origin).
    LaunchOrigin {
        /// A schedule (`dagster/schedule_name`).
        Schedule = "SCHEDULE" / "schedule",
        /// A sensor (`dagster/sensor_name`).
        Sensor = "SENSOR" / "sensor",
        /// A backfill (`dagster/backfill`).
        Backfill = "BACKFILL" / "backfill",
        /// By hand, or anything else.
        Manual = "MANUAL" / "manual",
    }
}

/// One earlier run of the same job in the same code location (`Run::history`).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct HistoryRun {
    /// Its run id.
    #[cfg_attr(feature = "wasmtime", component(name = "run-id"))]
    pub run_id: String,
    /// Its status when the case was built.
    pub status: RunStatus,
    /// The root of its re-execution group; `None` for an original run.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "root-run-id"))]
    pub root_run_id: Option<String>,
    /// Its `dagster/retry_number`; `None` for a first attempt.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "retry-number"))]
    pub retry_number: Option<u32>,
    /// Who or what launched it.
    #[cfg_attr(model_serde, serde(default = "crate::json::manual"))]
    #[cfg_attr(feature = "wasmtime", component(name = "launched-by"))]
    pub launched_by: LaunchOrigin,
    /// When it started, seconds since the Unix epoch; `None` if it never started.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "start-time"))]
    pub start_time: Option<f64>,
    /// When it ended, seconds since the Unix epoch; `None` while it has not.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "end-time"))]
    pub end_time: Option<f64>,
    /// For a failure: its reason, when recorded.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "failure-reason"))]
    pub failure_reason: Option<FailureReason>,
    /// For a failure: the first 1 KiB of its error (class name and message, as Dagster shows it).
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "failure-message"))]
    pub failure_message: Option<String>,
}

impl HistoryRun {
    /// An original run launched by hand, with no times and no failure recorded: a start for
    /// tests and examples, which set the fields they need with `..HistoryRun::new(id, status)`,
    /// so a field added to the contract does not break them.
    pub fn new(run_id: &str, status: RunStatus) -> Self {
        HistoryRun {
            run_id: run_id.to_string(),
            status,
            root_run_id: None,
            retry_number: None,
            launched_by: LaunchOrigin::Manual,
            start_time: None,
            end_time: None,
            failure_reason: None,
            failure_message: None,
        }
    }

    /// The root of its re-execution group: `root_run_id`, or its own id for an original run.
    pub fn group_root(&self) -> &str {
        self.root_run_id.as_deref().unwrap_or(&self.run_id)
    }

    /// When it ran: its start time, else its end time; `None` for a run that never started
    /// (queued, or killed before its start was recorded).
    pub fn time(&self) -> Option<f64> {
        self.start_time.or(self.end_time)
    }
}

/// The failed (parent) run.
// `remote = "Self"`: the derive makes inherent `Run::serialize`/`Run::deserialize`, which the
// trait impls in `json` call, the second then filling an absent group with the run alone.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(remote = "Self"))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct Run {
    /// Its id.
    #[cfg_attr(feature = "wasmtime", component(name = "run-id"))]
    pub run_id: String,
    /// Its status: normally `Failure` when a policy is asked.
    pub status: RunStatus,
    /// Its tags before the failure is processed.
    #[cfg_attr(model_serde, serde(default, with = "crate::json::tags"))]
    pub tags: Tags,
    /// The root of its re-execution group; `None` for an original run.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "root-run-id"))]
    pub root_run_id: Option<String>,
    /// The run it re-executes; `None` for an original run.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "parent-run-id"))]
    pub parent_run_id: Option<String>,
    /// The run group, root and this run included, in creation order (JSON: absent or empty is
    /// the run alone).
    #[cfg_attr(model_serde, serde(default))]
    pub group: Vec<GroupMember>,
    /// The execution plan, with per-step status from the run's event log.
    #[cfg_attr(model_serde, serde(default))]
    pub steps: Vec<Step>,
    /// The run's own step selection; `None` is the whole job.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "step-keys-to-execute"))]
    pub step_keys_to_execute: Option<Vec<String>>,
    /// The run's op selection, copied to a retry.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "op-selection"))]
    pub op_selection: Option<Vec<String>>,
    /// The job definition's tags.
    #[cfg_attr(model_serde, serde(default, with = "crate::json::tags"))]
    #[cfg_attr(feature = "wasmtime", component(name = "job-tags"))]
    pub job_tags: Tags,
    /// The backfill named by `dagster/backfill`, when the run has one.
    #[cfg_attr(model_serde, serde(default))]
    pub backfill: Option<Backfill>,
    /// The job's name (informational).
    #[cfg_attr(model_serde, serde(default))]
    pub job: Option<String>,
    /// The run's asset selection; `None` is the job's own.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Option::is_none"))]
    #[cfg_attr(feature = "wasmtime", component(name = "asset-selection"))]
    pub asset_selection: Option<Vec<String>>,
    /// The run's asset-check selection; `None` is every check of the selected assets, an
    /// empty list none.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Option::is_none"))]
    #[cfg_attr(feature = "wasmtime", component(name = "asset-check-selection"))]
    pub asset_check_selection: Option<Vec<String>>,
    /// Asset keys materialised at least once in this run.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Vec::is_empty"))]
    #[cfg_attr(feature = "wasmtime", component(name = "materialized-assets"))]
    pub materialized_assets: Vec<String>,
    /// Every asset-check evaluation of this run, in log order.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Vec::is_empty"))]
    #[cfg_attr(feature = "wasmtime", component(name = "check-evaluations"))]
    pub check_evaluations: Vec<CheckEvaluation>,
    /// The job's most recent runs before this one in the same code location, newest first
    /// (the orchestrator bounds it); empty when unknown.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Vec::is_empty"))]
    pub history: Vec<HistoryRun>,
}

impl Run {
    /// The root of its re-execution group: `root_run_id`, or its own id for an original run.
    pub fn group_root(&self) -> &str {
        self.root_run_id.as_deref().unwrap_or(&self.run_id)
    }

    /// An original run alone in its group, with no plan: a start for tests and examples.
    pub fn new(run_id: &str, status: RunStatus) -> Self {
        Run {
            run_id: run_id.to_string(),
            status,
            tags: Vec::new(),
            root_run_id: None,
            parent_run_id: None,
            group: vec![GroupMember {
                run_id: run_id.to_string(),
                parent_run_id: None,
                tags: Vec::new(),
                status: Some(status),
                exists: true,
            }],
            steps: Vec::new(),
            step_keys_to_execute: None,
            op_selection: None,
            job_tags: Vec::new(),
            backfill: None,
            job: None,
            asset_selection: None,
            asset_check_selection: None,
            materialized_assets: Vec::new(),
            check_evaluations: Vec::new(),
            history: Vec::new(),
        }
    }
}

/// Dagster's `RunFailureReason`; a value this contract does not know travels as `Other`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(variant))]
pub enum FailureReason {
    /// At least one step failed.
    #[cfg_attr(feature = "wasmtime", component(name = "step-failure"))]
    StepFailure,
    /// An exception escaped plan execution.
    #[cfg_attr(feature = "wasmtime", component(name = "run-exception"))]
    RunException,
    /// The run process was interrupted without a termination request.
    #[cfg_attr(feature = "wasmtime", component(name = "unexpected-termination"))]
    UnexpectedTermination,
    /// Executor, logger or resource setup failed before execution.
    #[cfg_attr(feature = "wasmtime", component(name = "job-initialization-failure"))]
    JobInitializationFailure,
    /// The run stayed starting longer than the start timeout.
    #[cfg_attr(feature = "wasmtime", component(name = "start-timeout"))]
    StartTimeout,
    /// A second run worker started for a run already started.
    #[cfg_attr(feature = "wasmtime", component(name = "run-worker-restart"))]
    RunWorkerRestart,
    /// Dagster's deserialisation fallback.
    #[cfg_attr(feature = "wasmtime", component(name = "unknown"))]
    Unknown,
    /// A reason this version of the contract does not know, verbatim.
    #[cfg_attr(feature = "wasmtime", component(name = "other"))]
    Other(String),
}

impl FailureReason {
    /// Every reason Dagster 1.13.29 knows, in its order.
    pub const KNOWN: [FailureReason; 7] = [
        FailureReason::StepFailure,
        FailureReason::RunException,
        FailureReason::UnexpectedTermination,
        FailureReason::JobInitializationFailure,
        FailureReason::StartTimeout,
        FailureReason::RunWorkerRestart,
        FailureReason::Unknown,
    ];

    /// Dagster's spelling; anything else becomes `Other`, verbatim.
    pub fn parse(value: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|known| known.as_str() == value)
            .cloned()
            .unwrap_or_else(|| FailureReason::Other(value.to_string()))
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
            FailureReason::Other(text) => text,
        }
    }
}

/// The failure being handled.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct Failure {
    /// The recorded reason; `None` when the failure carried none (a crash detected by
    /// monitoring, a max-runtime kill, a launch failure, ...).
    #[cfg_attr(model_serde, serde(default))]
    pub reason: Option<FailureReason>,
    /// Free text from the orchestrator, for custom policies (e.g. an OOM message).
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Option::is_none"))]
    pub message: Option<String>,
    /// When the run failed (the failure event's time), seconds since the Unix epoch: what the
    /// policy's wall clock reads. `None`: the fixed instant of 2000-01-01.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Option::is_none"))]
    pub now: Option<f64>,
}

impl Failure {
    /// A failure for `reason`, with no message and the fixed instant for `now`: a start for
    /// tests and examples (`Failure { now: Some(t), ..Failure::new(Some(reason)) }`), so a
    /// field added to the contract does not break them.
    pub fn new(reason: Option<FailureReason>) -> Self {
        Failure { reason, ..Failure::default() }
    }
}

/// The deployment's `run_retries` block. In JSON a misspelt key is an error (`max_retry` must
/// not silently mean 0).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(deny_unknown_fields))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct RunRetries {
    /// Run retries are on.
    #[cfg_attr(model_serde, serde(default))]
    pub enabled: bool,
    /// Default retry budget per run group; the `dagster/max_retries` tag overrides it.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "max-retries"))]
    pub max_retries: i64,
    /// Retry runs that failed because a step failed.
    #[cfg_attr(model_serde, serde(default = "crate::json::yes"))]
    #[cfg_attr(feature = "wasmtime", component(name = "retry-on-asset-or-op-failure"))]
    pub retry_on_asset_or_op_failure: bool,
    /// The Dagster release whose rules apply; `None`: the newest supported
    /// ([`DagsterVersion::NEWEST`]). JSON: `"1.11.3"`.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Option::is_none"))]
    #[cfg_attr(feature = "wasmtime", component(name = "dagster-version"))]
    pub dagster_version: Option<DagsterVersion>,
}

impl RunRetries {
    /// The Dagster release whose rules apply: the case's, else the newest supported.
    pub fn dagster(&self) -> DagsterVersion {
        self.dagster_version.unwrap_or(DagsterVersion::NEWEST)
    }
}

/// A Dagster release, `major.minor.patch`, ordered as releases are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct DagsterVersion {
    /// 1 for every release so far.
    pub major: u32,
    /// The minor release.
    pub minor: u32,
    /// The patch release.
    pub patch: u32,
}

impl DagsterVersion {
    /// The oldest release whose rules runretry implements.
    pub const OLDEST: DagsterVersion = DagsterVersion::new(1, 10, 12);
    /// The newest release whose rules runretry implements (and was checked against); later
    /// patches of its minor are taken too (Dagster changes no decision within a minor).
    pub const NEWEST: DagsterVersion = DagsterVersion::new(1, 13, 29);

    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        DagsterVersion { major, minor, patch }
    }

    /// Read `X.Y.Z` (digits only: a pre-release or local build names no release).
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = |part: Option<&str>| -> Option<u32> {
            part.filter(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()
        };
        let mut parts = text.split('.');
        match (number(parts.next()), number(parts.next()), number(parts.next()), parts.next()) {
            (Some(major), Some(minor), Some(patch), None) => Ok(DagsterVersion::new(major, minor, patch)),
            _ => Err(format!("{text:?} is not a Dagster release (major.minor.patch, e.g. \"1.13.29\")")),
        }
    }

    /// Whether runretry implements this release's rules: from [`OLDEST`](Self::OLDEST) to
    /// any patch of [`NEWEST`](Self::NEWEST)'s minor.
    pub fn is_supported(self) -> bool {
        self >= Self::OLDEST && (self.major, self.minor) <= (Self::NEWEST.major, Self::NEWEST.minor)
    }

    /// The supported range in words, for errors: `1.10.12 to 1.13.x`.
    pub fn supported_range() -> String {
        format!("{} to {}.{}.x", Self::OLDEST, Self::NEWEST.major, Self::NEWEST.minor)
    }

    /// [`parse`](Self::parse), then refuse a release outside the supported range, naming it.
    pub fn parse_supported(text: &str) -> Result<Self, String> {
        let version = Self::parse(text)?;
        if version.is_supported() {
            Ok(version)
        } else {
            Err(format!(
                "Dagster {version} is not supported: runretry implements the run-retry rules of Dagster {}",
                Self::supported_range()
            ))
        }
    }
}

impl std::fmt::Display for DagsterVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl std::str::FromStr for DagsterVersion {
    type Err = String;

    /// [`DagsterVersion::parse_supported`].
    fn from_str(text: &str) -> Result<Self, String> {
        DagsterVersion::parse_supported(text)
    }
}

/// A version is its text, `"1.13.29"`, in JSON and packed cases alike; reading refuses a
/// release outside the supported range.
#[cfg(model_serde)]
impl Serialize for DagsterVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(model_serde)]
impl<'de> Deserialize<'de> for DagsterVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = DagsterVersion;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Dagster release, \"major.minor.patch\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DagsterVersion, E> {
                DagsterVersion::parse_supported(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// The earlier name of [`RunRetries`], kept so policies written against it still build.
#[deprecated(note = "renamed `RunRetries` (it is the deployment's `run_retries` block)")]
pub type Config = RunRetries;

impl Default for RunRetries {
    /// Dagster's defaults when the block is absent.
    fn default() -> Self {
        RunRetries { enabled: false, max_retries: 0, retry_on_asset_or_op_failure: true, dagster_version: None }
    }
}

/// The complete answer to a failed run (case-format §2). In JSON it also carries `retry`, true
/// exactly for `LAUNCH_NEW` (`json` writes it and checks it on reading).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Deserialize), serde(remote = "Self", deny_unknown_fields))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// The new run's `dagster/retry_number`, when launching.
    #[cfg_attr(feature = "wasmtime", component(name = "retry-number"))]
    pub retry_number: Option<u32>,
    /// The strategy used; `None` when the policy never got that far.
    pub strategy: Option<Strategy>,
    /// Step keys the new run executes, when launching.
    pub steps: Option<Vec<String>>,
    /// The new run's full tag map (the orchestrator adds `dagster/code_location`).
    #[cfg_attr(model_serde, serde(with = "crate::json::tags"))]
    #[cfg_attr(feature = "wasmtime", component(name = "new-run-tags"))]
    pub new_run_tags: Tags,
    /// Tags to write on the failed run.
    #[cfg_attr(model_serde, serde(with = "crate::json::tags"))]
    #[cfg_attr(feature = "wasmtime", component(name = "failed-run-tags"))]
    pub failed_run_tags: Tags,
    /// The run to submit again, for `ResubmitExisting`.
    #[cfg_attr(feature = "wasmtime", component(name = "resubmit-run-id"))]
    pub resubmit_run_id: Option<String>,
    /// Seconds to wait before launching: finite and at least 0.
    #[cfg_attr(feature = "wasmtime", component(name = "delay-seconds"))]
    pub delay_seconds: f64,
    /// Engine events and warnings to log, in order.
    pub events: Vec<String>,
    /// One human sentence: why this decision.
    pub reason: String,
    /// The new run's asset selection, when launching: for `FromAssetFailure` the assets to
    /// re-execute, otherwise the failed run's own, carried over.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "asset-selection"))]
    pub asset_selection: Option<Vec<String>>,
    /// The new run's asset-check selection, when launching (as `asset_selection`, for checks).
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "asset-check-selection"))]
    pub asset_check_selection: Option<Vec<String>>,
}

impl Decision {
    /// A decision to do nothing, saying why.
    pub fn none(reason: impl Into<String>) -> Self {
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
            reason: reason.into(),
            asset_selection: None,
            asset_check_selection: None,
        }
    }

    /// True exactly when the decision launches a new run (the JSON `retry` field).
    pub fn retry(&self) -> bool {
        self.action == Action::LaunchNew
    }
}

/// What a re-execution runs (`select-steps`' answer): its steps and, for asset jobs, its
/// asset and check selections.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(deny_unknown_fields))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct Selection {
    /// Step keys. For `FromAssetFailure`, the planned steps owning a selected entity
    /// (informational: the orchestrator plans the new run from the selections).
    pub steps: Vec<String>,
    /// The new run's asset selection (`None`: the job's own).
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "asset-selection"))]
    pub asset_selection: Option<Vec<String>>,
    /// The new run's asset-check selection (`None`: every check of the selected assets).
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "asset-check-selection"))]
    pub asset_check_selection: Option<Vec<String>>,
}

impl Selection {
    /// A selection of steps that keeps the failed run's asset selections: what FROM_FAILURE
    /// and ALL_STEPS answer.
    pub fn of_steps(run: &Run, steps: Vec<String>) -> Self {
        Selection {
            steps,
            asset_selection: run.asset_selection.clone(),
            asset_check_selection: run.asset_check_selection.clone(),
        }
    }
}

/// The answer of `select-steps` as the command line prints it: what a re-execution runs, or
/// the policy's refusal.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(untagged))]
pub enum SelectionAnswer {
    /// What a re-execution runs: `{"strategy": ..., "steps": [...], "asset_selection": ...}`.
    Selected {
        /// The strategy asked for.
        strategy: Strategy,
        /// The selection.
        #[cfg_attr(model_serde, serde(flatten))]
        selection: Selection,
    },
    /// Why the run cannot be re-executed that way.
    Refused {
        /// The strategy asked for.
        strategy: Strategy,
        /// The policy's message.
        error: String,
    },
}

#[cfg(test)]
mod tag_merge_tests {
    use super::TagMerge;

    /// Below and past the indexing threshold, the merge is `set_tag`'s: first place, last value.
    #[test]
    fn merges_as_set_tag_does_at_every_size() {
        for size in [3, TagMerge::INDEXED_FROM + 10] {
            let tags: Vec<(String, String)> =
                (0..size).map(|i| (format!("k{}", i % (size - 1)), format!("v{i}"))).collect();
            let mut merge = TagMerge::new(&tags);
            merge.set("k0", "last");
            merge.set("new", "n");
            let mut expected = Vec::new();
            for (key, value) in
                tags.iter().chain([("k0".to_string(), "last".to_string()), ("new".into(), "n".into())].iter())
            {
                super::set_tag(&mut expected, key, value);
            }
            assert_eq!(merge.into_tags(), expected, "size {size}");
        }
    }
}

#[cfg(test)]
mod wit_order_tests {
    use super::*;

    /// The cases of `enum NAME { ... }` in `wit/policy.wit`, in order.
    fn wit_enum(name: &str) -> Vec<String> {
        let wit = include_str!("../../wit/policy.wit");
        let body = wit.split(&format!("enum {name} {{")).nth(1).unwrap_or_else(|| panic!("no enum {name} in the WIT"));
        let body = body.split('}').next().unwrap();
        body.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("//"))
            .map(|line| line.trim_end_matches(',').to_string())
            .collect()
    }

    /// `NotStarted` as the WIT spells it: `not-started`.
    fn kebab(variant: impl std::fmt::Debug) -> String {
        let mut out = String::new();
        for (i, c) in format!("{variant:?}").chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    /// The guest lowers an enum as its declaration index (wit-bindgen's `as i32` on the model's
    /// own type) and lifts it by `ALL[index]`: the model must list every case in the WIT's order.
    #[test]
    fn every_enum_lists_the_wit_cases_in_their_order() {
        fn cases<T: Copy + std::fmt::Debug>(all: &[T]) -> Vec<String> {
            all.iter().map(|v| kebab(*v)).collect()
        }
        assert_eq!(cases(RunStatus::ALL), wit_enum("run-status"));
        assert_eq!(cases(StepStatus::ALL), wit_enum("step-status"));
        assert_eq!(cases(CheckSeverity::ALL), wit_enum("check-severity"));
        assert_eq!(cases(BackfillStatus::ALL), wit_enum("backfill-status"));
        assert_eq!(cases(LaunchOrigin::ALL), wit_enum("launch-origin"));
        assert_eq!(cases(Strategy::ALL), wit_enum("retry-strategy"));
        assert_eq!(cases(Action::ALL), wit_enum("action"));
        for (index, variant) in RunStatus::ALL.iter().enumerate() {
            assert_eq!(*variant as usize, index, "declaration order is the discriminant");
        }
    }
}

#[cfg(test)]
mod spelling_tests {
    use super::*;

    #[test]
    fn an_unknown_spelling_names_the_enum_and_its_spellings() {
        assert_eq!("FROM_FAILURE".parse::<Strategy>(), Ok(Strategy::FromFailure));
        let error = "LATER".parse::<Strategy>().unwrap_err().to_string();
        assert_eq!(error, "\"LATER\" is not a strategy (one of ALL_STEPS, FROM_FAILURE, FROM_ASSET_FAILURE)");
        let error = "failure".parse::<RunStatus>().unwrap_err().to_string();
        assert!(error.starts_with("\"failure\" is not a run status (one of QUEUED, "), "{error}");
    }
}
