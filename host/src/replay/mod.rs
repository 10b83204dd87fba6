//! What-if replay: decide recorded cases again with a candidate policy and compare with a
//! baseline, either another policy or the decisions a decision log recorded.
//!
//! The runner ([`replay`]) returns a [`ReplayReport`]; `report` renders it as text, JSON or
//! Markdown. Run cases are decided with [`decide_batch`] (every core, answers in order), task
//! cases (Airflow) on as many threads.
//!
//! A replay knows first decisions only: when the candidate retries a run the baseline gave up
//! on, what that new run would have done is unknown. Such chains are counted
//! (`ReplayReport::extra_runs`) and never simulated. For a task case an extra run is an extra
//! try of the task, and a `default` answer is compared as what it means, Airflow's own
//! decision: the embedded default task policy's, which reproduces Airflow 3.3.2 exactly.

use std::collections::BTreeMap;
use std::io::BufRead;

use runretry_kit::{AnyCase, Decision, TaskAction, TaskCase, TaskDecision};

use crate::dagster_yaml::ConfigOverride;
use serde::Serialize;
use serde_json::Value;

use crate::batch::decide_batch;
use crate::decision_record::{DecisionRecord, RecordedAnswer, RecordedError};
use crate::error::Error;
use crate::fallback::Deployment;
use crate::policy::Policy;

mod compare;
mod report;

use compare::OTHER;
pub use compare::{compare_answers, ChangeKind, Difference, CHANGE_KINDS};
pub use report::{render_replay, ReplayFormat};

/// One case to replay, and what was recorded for it (from a decision log).
#[derive(Clone, Debug)]
pub struct ReplayEntry {
    /// Its line in the input, from 1.
    pub line: usize,
    /// The case: a failed run (Dagster) or a task's failed try (Airflow).
    pub case: AnyCase,
    /// The recorded answer: a decision, or the kind of error the policy failed with. `None`
    /// for a plain case line.
    pub recorded: Option<Result<ReplayAnswer, String>>,
}

/// A policy's answer to one case, of the case's kind.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplayAnswer {
    /// The decision for a failed run.
    Run(Decision),
    /// The decision for a task's failed try.
    Task(TaskDecision),
}

/// Read a JSON Lines file of cases (run or task) or of decision-log records (`decide` and
/// `decide-task`; they may be mixed). Records of other endpoints (`select-steps`) and records
/// without a case (a request that did not parse) are skipped: nothing to replay. A bad line is
/// an error naming the line and the field.
pub fn read_replay_input(source: &str, input: impl BufRead) -> Result<Vec<ReplayEntry>, Error> {
    let mut entries = Vec::new();
    let (mut other_endpoints, mut without_case) = (0, 0);
    for (index, text) in input.lines().enumerate() {
        let line = index + 1;
        let at = format!("{source}:{line}");
        let text = text.map_err(|e| Error::unreadable(&at, &e))?;
        if text.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(&text).map_err(|e| Error::bad_input_caused(format!("{at}: {e}"), &e))?;
        if !value.as_object().is_some_and(|o| o.contains_key("decision_id")) {
            entries.push(ReplayEntry { line, case: AnyCase::from_json(&at, &text)?, recorded: None });
            continue;
        }
        let record: DecisionRecord = serde_path_to_error::deserialize(value)
            .map_err(|e| Error::bad_input(format!("{at}: {}: {}", e.path(), e.inner())))?;
        let (case, recorded) = match record.answer {
            RecordedAnswer::Decide { decision, error, .. } => {
                (record.case.map(AnyCase::Run), recorded_answer(&at, decision.map(ReplayAnswer::Run), error)?)
            }
            RecordedAnswer::DecideTask { decision, error, .. } => {
                (record.task.map(AnyCase::Task), recorded_answer(&at, decision.map(ReplayAnswer::Task), error)?)
            }
            RecordedAnswer::SelectSteps { .. } | RecordedAnswer::DecideBatch { .. } => {
                other_endpoints += 1;
                continue;
            }
        };
        let Some(case) = case else {
            without_case += 1;
            continue;
        };
        validate_recorded(&at, &case)?;
        entries.push(ReplayEntry { line, case, recorded: Some(recorded) });
    }
    if other_endpoints + without_case > 0 {
        tracing::info!(
            "{source}: skipped {} decision-log records with nothing to replay ({other_endpoints} of other \
             endpoints, {without_case} without a case: requests that did not parse)",
            other_endpoints + without_case
        );
    }
    Ok(entries)
}

/// A record's answer: its decision, or the kind of error it failed with.
fn recorded_answer(
    at: &str,
    decision: Option<ReplayAnswer>,
    error: Option<RecordedError>,
) -> Result<Result<ReplayAnswer, String>, Error> {
    match (decision, error) {
        (Some(decision), _) => Ok(Ok(decision)),
        (None, Some(error)) => Ok(Err(error.kind)),
        (None, None) => Err(Error::bad_input(format!("{at}: a decision-log record with neither decision nor error"))),
    }
}

/// A recorded case is checked as a case line is: a log may have been edited, or written by an
/// older service. The error names the record's field (`case.run...`, `task...`).
fn validate_recorded(at: &str, case: &AnyCase) -> Result<(), Error> {
    let checked = match case {
        AnyCase::Run(case) => case.validate().map_err(|(path, message)| (format!("case.{path}"), message)),
        // A task case's paths start at `task`, the record's own field.
        AnyCase::Task(task) => task.validate(),
    };
    checked.map_err(|(path, message)| Error::bad_input(format!("{at}: {path}: {message}")))
}

/// What the candidate is compared with.
pub enum Baseline<'a> {
    /// Another policy, deciding every case now.
    Policy(&'a Deployment),
    /// The decisions recorded in the decision log (every entry must have one).
    Recorded,
}

/// Counts for one kind of change.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindCount {
    /// The kind ([`CHANGE_KINDS`], `other`, `error`).
    pub kind: &'static str,
    /// Decisions changed this way.
    pub count: usize,
    /// Up to three run ids of such decisions.
    pub sample_run_ids: Vec<String>,
}

/// Sample run ids kept per kind of change.
pub const SAMPLES: usize = 3;

/// The changes among one job's cases.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JobReport {
    /// The job's name (`(no job)` when the run names none); for task cases, the task as
    /// `dag_id.task_id`.
    pub job: String,
    /// Cases replayed.
    pub cases: usize,
    /// Decisions changed.
    pub changed: usize,
    /// Runs the candidate starts that the baseline did not.
    pub extra_runs: usize,
    /// Runs the baseline started that the candidate does not.
    pub avoided_runs: usize,
    /// By kind, in report order; kinds with no change left out.
    pub kinds: Vec<KindCount>,
}

/// The outcome of a replay.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The candidate's name.
    pub candidate: String,
    /// The baseline's name (a policy, or `recorded`).
    pub baseline: String,
    /// Cases replayed.
    pub cases: usize,
    /// Decisions that changed in any way (an error on one side only included).
    pub changed: usize,
    /// Changed decisions by kind (one decision may change in several ways).
    pub kinds: Vec<KindCount>,
    /// Cases the candidate failed on.
    pub candidate_errors: usize,
    /// Cases the baseline failed on.
    pub baseline_errors: usize,
    /// Runs the candidate starts that the baseline did not. What those runs would have done is
    /// unknown: replay does not simulate chains the baseline never started.
    pub extra_runs: usize,
    /// Runs the baseline started that the candidate does not.
    pub avoided_runs: usize,
    /// Steps re-executed by the candidate and not by the baseline, summed.
    pub extra_steps: usize,
    /// Steps re-executed by the baseline and not by the candidate, summed.
    pub fewer_steps: usize,
    /// The candidate's delays minus the baseline's, summed, in seconds.
    pub added_delay_seconds: f64,
    /// Per job, by name.
    pub jobs: Vec<JobReport>,
}

impl ReplayReport {
    /// Changed decisions as a percentage of the cases (0 for no cases).
    pub fn changed_percent(&self) -> f64 {
        if self.cases == 0 {
            0.0
        } else {
            self.changed as f64 * 100.0 / self.cases as f64
        }
    }
}

/// Decide every entry with `candidate` (and the baseline policy, if one) on `jobs` threads,
/// replacing every case's config with `config` when given, and compare. `progress` is called
/// once per decision made.
pub fn replay(
    entries: &[ReplayEntry],
    candidate: &Deployment,
    baseline: Baseline<'_>,
    config: ConfigOverride,
    jobs: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<ReplayReport, Error> {
    let mut cand_answers = decide_all(entries, candidate, config, jobs, progress)?;
    let (mut base_answers, baseline_name) = match baseline {
        Baseline::Policy(deployment) => {
            let name = deployment.policy().map(|p| p.name().to_string()).unwrap_or_default();
            (decide_all(entries, deployment, config, jobs, progress)?, name)
        }
        Baseline::Recorded => {
            let recorded = entries
                .iter()
                .map(|entry| {
                    entry.recorded.clone().ok_or_else(|| {
                        Error::bad_input(format!(
                            "line {}: --recorded needs decision-log records; this line is a plain case",
                            entry.line
                        ))
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            (recorded, "recorded".to_string())
        }
    };
    let airflow = AirflowDefault { beside: candidate.policy().ok(), policy: std::sync::OnceLock::new() };
    airflow.resolve(entries, &mut cand_answers);
    airflow.resolve(entries, &mut base_answers);
    let mut report = ReplayReport {
        candidate: candidate.policy().map(|p| p.name().to_string()).unwrap_or_default(),
        baseline: baseline_name,
        ..ReplayReport::default()
    };
    let mut jobs: BTreeMap<String, JobReport> = BTreeMap::new();
    for ((entry, cand), base) in entries.iter().zip(&cand_answers).zip(&base_answers) {
        let difference =
            compare_answers(&entry.case, cand.as_ref().map_err(String::as_str), base.as_ref().map_err(String::as_str));
        report.cases += 1;
        report.candidate_errors += usize::from(cand.is_err());
        report.baseline_errors += usize::from(base.is_err());
        report.extra_runs += usize::from(difference.extra_run);
        report.avoided_runs += usize::from(difference.avoided_run);
        report.extra_steps += difference.extra_steps;
        report.fewer_steps += difference.fewer_steps;
        report.added_delay_seconds += difference.added_delay_seconds;
        let (job_name, run_id) = job_and_run(&entry.case);
        let job = jobs.entry(job_name.clone()).or_insert_with(|| JobReport { job: job_name, ..JobReport::default() });
        job.cases += 1;
        job.extra_runs += usize::from(difference.extra_run);
        job.avoided_runs += usize::from(difference.avoided_run);
        if difference.kinds.is_empty() {
            continue;
        }
        report.changed += 1;
        job.changed += 1;
        for kind in &difference.kinds {
            count(&mut report.kinds, kind, run_id);
            count(&mut job.kinds, kind, run_id);
        }
    }
    report.jobs = jobs.into_values().collect();
    Ok(report)
}

/// What a task policy's `default` answer means: Airflow's own decision, which the embedded
/// default task policy computes. Loaded on first use (a replay of run cases never needs it).
struct AirflowDefault<'a> {
    /// The candidate: the default policy is loaded in its sandbox (none: the candidate did not
    /// load, and every one of its answers is an error anyway).
    beside: Option<&'a Policy>,
    policy: std::sync::OnceLock<Result<Policy, Error>>,
}

impl AirflowDefault<'_> {
    /// Replace every task answer `default` by Airflow's decision for its case. Where that
    /// cannot be had, the answer stays `default` (compared as a retry with no known delay).
    fn resolve(&self, entries: &[ReplayEntry], answers: &mut [Result<ReplayAnswer, String>]) {
        let Some(beside) = self.beside else { return };
        for (entry, answer) in entries.iter().zip(answers) {
            let (AnyCase::Task(task), Ok(ReplayAnswer::Task(decision))) = (&entry.case, &*answer) else {
                continue;
            };
            if decision.action != TaskAction::Default {
                continue;
            }
            let policy = self.policy.get_or_init(|| beside.sandbox().load_default());
            if let Ok(Ok(airflow)) = policy.as_ref().map(|policy| policy.decide_task(task)) {
                *answer = Ok(ReplayAnswer::Task(airflow));
            }
        }
    }
}

/// The name a case is reported under, and the run id its samples show.
fn job_and_run(case: &AnyCase) -> (String, &str) {
    match case {
        AnyCase::Run(case) => (case.run.job.clone().unwrap_or_else(|| "(no job)".into()), &case.run.run_id),
        AnyCase::Task(task) => (format!("{}.{}", task.dag_id, task.task_id), &task.run_id),
    }
}

/// Count one change of `kind`, keeping the counts in report order.
fn count(kinds: &mut Vec<KindCount>, kind: &'static str, run_id: &str) {
    let place = match kinds.iter().position(|k| k.kind == kind) {
        Some(place) => place,
        None => {
            kinds.push(KindCount { kind, ..KindCount::default() });
            kinds.sort_by_key(|k| kind_order(k.kind));
            kinds.iter().position(|k| k.kind == kind).expect("just added")
        }
    };
    let entry = &mut kinds[place];
    entry.count += 1;
    if entry.sample_run_ids.len() < SAMPLES && !entry.sample_run_ids.iter().any(|id| id == run_id) {
        entry.sample_run_ids.push(run_id.to_string());
    }
}

fn kind_order(kind: &str) -> usize {
    CHANGE_KINDS.iter().position(|k| k.name == kind).unwrap_or(match kind {
        OTHER => CHANGE_KINDS.len(),
        _ => CHANGE_KINDS.len() + 1,
    })
}

/// Every entry decided by `deployment`, in order; a failure is kept as its error kind. `config`
/// replaces run cases' config only (a task case's settings are the task's own).
fn decide_all(
    entries: &[ReplayEntry],
    deployment: &Deployment,
    config: ConfigOverride,
    jobs: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<Result<ReplayAnswer, String>>, Error> {
    let (mut runs, mut tasks) = (Vec::new(), Vec::new());
    for entry in entries {
        match &entry.case {
            AnyCase::Run(case) => runs.push(case),
            AnyCase::Task(task) => tasks.push(task),
        }
    }
    // The batch runner reads JSON Lines: hand it the run cases as such.
    let mut lines = String::new();
    for case in runs {
        lines.push_str(&serde_json::to_string(case).expect("cases serialise"));
        lines.push('\n');
    }
    let mut run_answers = Vec::with_capacity(entries.len());
    decide_batch(lines.as_bytes(), "replay", deployment, config, jobs, |answer| {
        progress();
        run_answers.push(answer.result.map(ReplayAnswer::Run).map_err(|error| error.kind().to_string()));
        true
    })?;
    let mut task_answers = decide_tasks(&tasks, deployment, jobs, progress).into_iter();
    let mut run_answers = run_answers.into_iter();
    // Back in the entries' order: each kind's answers are in its own entries' order.
    Ok(entries
        .iter()
        .map(|entry| {
            let next = match entry.case {
                AnyCase::Run(_) => run_answers.next(),
                AnyCase::Task(_) => task_answers.next(),
            };
            next.expect("one answer per case")
        })
        .collect())
}

/// Every task case decided, in order, on up to `jobs` threads (each a contiguous share).
fn decide_tasks(
    tasks: &[&TaskCase],
    deployment: &Deployment,
    jobs: usize,
    progress: &(dyn Fn() + Sync),
) -> Vec<Result<ReplayAnswer, String>> {
    if tasks.is_empty() {
        return Vec::new();
    }
    let share = tasks.len().div_ceil(jobs.max(1));
    std::thread::scope(|scope| {
        let workers: Vec<_> = tasks
            .chunks(share)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|task| {
                            let answer = deployment.decide_task(task);
                            progress();
                            answer.map(ReplayAnswer::Task).map_err(|error| error.kind().to_string())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().expect("deciding does not panic")).collect()
    })
}
