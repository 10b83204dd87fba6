//! The task half of the contract (`task-types` in `wit/policy.wit`): one task's failed try, as
//! Airflow 3.3's `RetryPolicy.evaluate` sees it, and the answer. Field for field as the WIT
//! declares it (kebab-case there, snake_case here and in JSON, `docs/case-format.md`).

#[cfg(model_serde)]
use serde::{Deserialize, Serialize};
#[cfg(feature = "wasmtime")]
use wasmtime::component::{ComponentType, Lift, Lower};

use crate::model::UnknownSpelling;

spelled_enum! {
    /// How the DAG run was created (Airflow's `DagRunType`, spelled as Airflow does).
    DagRunType {
        /// By the DAG's schedule.
        Scheduled = "scheduled" / "scheduled",
        /// By hand (the UI, the API, `airflow dags trigger`, `dag.test()`).
        Manual = "manual" / "manual",
        /// By a backfill.
        Backfill = "backfill" / "backfill",
        /// By an asset event.
        AssetTriggered = "asset_triggered" / "asset-triggered",
        /// By an asset materialization request.
        AssetMaterialization = "asset_materialization" / "asset-materialization",
        /// By another DAG's `TriggerDagRunOperator`.
        OperatorTriggered = "operator_triggered" / "operator-triggered",
    }
}

spelled_enum! {
    /// A task instance's state (Airflow's `TaskInstanceState`, spelled as Airflow does; `none`
    /// for no state).
    TaskState {
        /// No state yet.
        None = "none" / "none",
        /// Removed from the DAG.
        Removed = "removed" / "removed",
        /// Scheduled.
        Scheduled = "scheduled" / "scheduled",
        /// Queued for a worker.
        Queued = "queued" / "queued",
        /// Running.
        Running = "running" / "running",
        /// Succeeded.
        Success = "success" / "success",
        /// Being restarted.
        Restarting = "restarting" / "restarting",
        /// Failed, no retries left (or a policy said fail).
        Failed = "failed" / "failed",
        /// Failed, waiting to retry.
        UpForRetry = "up_for_retry" / "up-for-retry",
        /// A sensor waiting to be rescheduled.
        UpForReschedule = "up_for_reschedule" / "up-for-reschedule",
        /// An upstream task failed.
        UpstreamFailed = "upstream_failed" / "upstream-failed",
        /// Skipped.
        Skipped = "skipped" / "skipped",
        /// Deferred to the triggerer.
        Deferred = "deferred" / "deferred",
    }
}

spelled_enum! {
    /// What a task policy answers (Airflow's `RetryAction`, spelled as its values are).
    TaskAction {
        /// Retry after the decision's delay, when retries remain.
        Retry = "retry" / "retry",
        /// Fail now, whatever retries remain.
        Fail = "fail" / "fail",
        /// Do what the orchestrator does without a policy.
        Default = "default" / "default",
    }
}

/// One exception: the raised one, or a link of its chain of causes.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(deny_unknown_fields))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct ExceptionInfo {
    /// Its qualified class name, `module.QualName` as Airflow's `RetryRule` spells it
    /// (`builtins.ValueError`).
    #[cfg_attr(feature = "wasmtime", component(name = "class-name"))]
    pub class_name: String,
    /// The qualified names of its base classes, nearest first (its MRO without itself and
    /// `object`).
    #[cfg_attr(model_serde, serde(default))]
    pub bases: Vec<String>,
    /// `str(exception)`.
    #[cfg_attr(model_serde, serde(default))]
    pub message: String,
}

impl ExceptionInfo {
    /// An exception of `class_name` with `message` and no bases.
    pub fn new(class_name: &str, message: &str) -> Self {
        ExceptionInfo { class_name: class_name.into(), bases: Vec::new(), message: message.into() }
    }

    /// Whether it is `class_name` or a subclass of it (by qualified name).
    pub fn is_a(&self, class_name: &str) -> bool {
        self.class_name == class_name || self.bases.iter().any(|base| base == class_name)
    }
}

/// A task's retry settings, as its operator holds them (durations in seconds).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(deny_unknown_fields))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct RetrySettings {
    /// `retries`.
    #[cfg_attr(model_serde, serde(default))]
    pub retries: u32,
    /// `retry_delay` (Airflow's default: 300).
    #[cfg_attr(model_serde, serde(default = "default_retry_delay"))]
    #[cfg_attr(feature = "wasmtime", component(name = "retry-delay-seconds"))]
    pub retry_delay_seconds: f64,
    /// `retry_exponential_backoff`: the multiplier (0 or 1: none).
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "retry-exponential-backoff"))]
    pub retry_exponential_backoff: f64,
    /// `max_retry_delay`; `None`: no cap of the task's own. It caps only an exponential delay.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "max-retry-delay-seconds"))]
    pub max_retry_delay_seconds: Option<f64>,
    /// The deployment's `[core] max_task_retry_delay` (Airflow's default: 86,400): the cap of
    /// every exponential delay.
    #[cfg_attr(model_serde, serde(default = "default_max_task_retry_delay"))]
    #[cfg_attr(feature = "wasmtime", component(name = "max-task-retry-delay-seconds"))]
    pub max_task_retry_delay_seconds: i64,
}

#[cfg(model_serde)]
fn default_max_task_retry_delay() -> i64 {
    RetrySettings::DEFAULT_MAX_TASK_RETRY_DELAY
}

impl RetrySettings {
    /// Airflow's default `[core] max_task_retry_delay`: 24 hours, in seconds.
    pub const DEFAULT_MAX_TASK_RETRY_DELAY: i64 = 24 * 60 * 60;
}

#[cfg(model_serde)]
fn default_retry_delay() -> f64 {
    RetrySettings::default().retry_delay_seconds
}

impl Default for RetrySettings {
    /// Airflow's defaults: no retries, 300 s, no backoff, no cap.
    fn default() -> Self {
        RetrySettings {
            retries: 0,
            retry_delay_seconds: 300.0,
            retry_exponential_backoff: 0.0,
            max_retry_delay_seconds: None,
            max_task_retry_delay_seconds: Self::DEFAULT_MAX_TASK_RETRY_DELAY,
        }
    }
}

/// One earlier try of this task instance (Airflow's `TaskInstanceHistory`).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(deny_unknown_fields))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct TaskTry {
    /// Its try number (1 is the first).
    #[cfg_attr(feature = "wasmtime", component(name = "try-number"))]
    pub try_number: u32,
    /// How it ended.
    pub state: TaskState,
    /// When it started, seconds since the Unix epoch.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "start-time"))]
    pub start_time: Option<f64>,
    /// When it ended, seconds since the Unix epoch.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "end-time"))]
    pub end_time: Option<f64>,
    /// The reason a retry policy gave for its decision, when one did.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "retry-reason"))]
    pub retry_reason: Option<String>,
}

/// This task in one of the DAG's earlier runs.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(deny_unknown_fields))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct TaskRun {
    /// The DAG run's id.
    #[cfg_attr(feature = "wasmtime", component(name = "run-id"))]
    pub run_id: String,
    /// How that run was created.
    #[cfg_attr(feature = "wasmtime", component(name = "run-type"))]
    pub run_type: DagRunType,
    /// Its logical date as Airflow prints it; `None` for a run without one.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "logical-date"))]
    pub logical_date: Option<String>,
    /// The task's state in that run.
    pub state: TaskState,
    /// How many tries it took.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "try-number"))]
    pub try_number: u32,
    /// When it ended, seconds since the Unix epoch.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "end-time"))]
    pub end_time: Option<f64>,
    /// The reason a retry policy gave at its last decision, when one did.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "retry-reason"))]
    pub retry_reason: Option<String>,
}

impl TaskRun {
    /// A scheduled run's task in `state` after one try, with nothing else recorded: a start for
    /// tests and examples (`TaskRun { end_time: Some(t), ..TaskRun::new(id, state) }`).
    pub fn new(run_id: &str, state: TaskState) -> Self {
        TaskRun {
            run_id: run_id.into(),
            run_type: DagRunType::Scheduled,
            logical_date: None,
            state,
            try_number: 1,
            end_time: None,
            retry_reason: None,
        }
    }
}

/// A task's failed try: everything a task policy decides on. In JSON it is the `task` of a
/// task case (`{"task": {...}}`).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(deny_unknown_fields))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct TaskCase {
    /// Who asks, e.g. `airflow 3.3.2` (informational).
    #[cfg_attr(model_serde, serde(default))]
    pub orchestrator: String,
    /// The DAG's id.
    #[cfg_attr(feature = "wasmtime", component(name = "dag-id"))]
    pub dag_id: String,
    /// The task's id.
    #[cfg_attr(feature = "wasmtime", component(name = "task-id"))]
    pub task_id: String,
    /// The DAG run's id.
    #[cfg_attr(feature = "wasmtime", component(name = "run-id"))]
    pub run_id: String,
    /// A mapped task instance's index; -1 for a task that is not mapped.
    #[cfg_attr(model_serde, serde(default = "not_mapped"))]
    #[cfg_attr(feature = "wasmtime", component(name = "map-index"))]
    pub map_index: i32,
    /// The try that failed (1 is the first).
    #[cfg_attr(feature = "wasmtime", component(name = "try-number"))]
    pub try_number: u32,
    /// The last try retries allow (Airflow's `max_tries`): a retry is possible while
    /// `try_number` is at most this.
    #[cfg_attr(feature = "wasmtime", component(name = "max-tries"))]
    pub max_tries: u32,
    /// The task's retry settings.
    #[cfg_attr(model_serde, serde(default))]
    pub settings: RetrySettings,
    /// How the DAG run was created.
    #[cfg_attr(model_serde, serde(default = "manual"))]
    #[cfg_attr(feature = "wasmtime", component(name = "run-type"))]
    pub run_type: DagRunType,
    /// The DAG run's logical date exactly as Python's `str()` prints it (what Airflow hashes
    /// for its jitter); `None` for a run without one.
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "logical-date"))]
    pub logical_date: Option<String>,
    /// The exception the try raised.
    pub exception: ExceptionInfo,
    /// Its chain of causes, outermost first.
    #[cfg_attr(model_serde, serde(default))]
    pub causes: Vec<ExceptionInfo>,
    /// This task instance's earlier tries, oldest first.
    #[cfg_attr(model_serde, serde(default))]
    pub tries: Vec<TaskTry>,
    /// This task in the DAG's most recent earlier runs, newest first.
    #[cfg_attr(model_serde, serde(default))]
    pub history: Vec<TaskRun>,
    /// When the try failed, seconds since the Unix epoch: what the wall clock reads. `None`:
    /// the fixed instant of 2000-01-01.
    #[cfg_attr(model_serde, serde(default, skip_serializing_if = "Option::is_none"))]
    pub now: Option<f64>,
}

#[cfg(model_serde)]
fn not_mapped() -> i32 {
    -1
}

#[cfg(model_serde)]
fn manual() -> DagRunType {
    DagRunType::Manual
}

impl TaskCase {
    /// Try `try_number` of `dag_id.task_id` in run `run_id` failed with `exception`, with
    /// `retries` retries of Airflow's default settings: a start for tests and examples, which
    /// set the fields they need with `..TaskCase::new(...)`.
    pub fn new(
        dag_id: &str,
        task_id: &str,
        run_id: &str,
        try_number: u32,
        retries: u32,
        exception: ExceptionInfo,
    ) -> Self {
        TaskCase {
            orchestrator: String::new(),
            dag_id: dag_id.into(),
            task_id: task_id.into(),
            run_id: run_id.into(),
            map_index: -1,
            try_number,
            max_tries: retries,
            settings: RetrySettings { retries, ..RetrySettings::default() },
            run_type: DagRunType::Manual,
            logical_date: None,
            exception,
            causes: Vec::new(),
            tries: Vec::new(),
            history: Vec::new(),
            now: None,
        }
    }

    /// Whether Airflow would retry without a policy: retries remain.
    pub fn retries_remain(&self) -> bool {
        self.try_number <= self.max_tries
    }

    /// The raised exception and its causes, outermost first.
    pub fn exceptions(&self) -> impl Iterator<Item = &ExceptionInfo> {
        std::iter::once(&self.exception).chain(&self.causes)
    }
}

/// The answer to a task's failed try.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(model_serde, derive(Serialize, Deserialize), serde(deny_unknown_fields))]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower), component(record))]
pub struct TaskDecision {
    /// What to do.
    pub action: TaskAction,
    /// For `Retry` only: seconds to wait, added to the try's end as it is; `None`: the task's
    /// `retry_delay` (Airflow applies no backoff to a policy's retry).
    #[cfg_attr(model_serde, serde(default))]
    #[cfg_attr(feature = "wasmtime", component(name = "delay-seconds"))]
    pub delay_seconds: Option<f64>,
    /// One human sentence: why.
    pub reason: String,
    /// Events and warnings to log, in order.
    #[cfg_attr(model_serde, serde(default))]
    pub events: Vec<String>,
}

impl TaskDecision {
    /// Retry after `delay_seconds` (`None`: the task's `retry_delay`).
    pub fn retry(delay_seconds: Option<f64>, reason: impl Into<String>) -> Self {
        TaskDecision { action: TaskAction::Retry, delay_seconds, reason: reason.into(), events: Vec::new() }
    }

    /// Fail now.
    pub fn fail(reason: impl Into<String>) -> Self {
        TaskDecision { action: TaskAction::Fail, delay_seconds: None, reason: reason.into(), events: Vec::new() }
    }

    /// Do what the orchestrator does without a policy.
    pub fn default(reason: impl Into<String>) -> Self {
        TaskDecision { action: TaskAction::Default, delay_seconds: None, reason: reason.into(), events: Vec::new() }
    }
}
