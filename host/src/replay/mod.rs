//! What-if replay: decide recorded cases again with a candidate policy and compare with a
//! baseline, either another policy or the decisions a decision log recorded.
//!
//! The runner ([`replay`]) returns a [`ReplayReport`]; `report` renders it as text, JSON or
//! Markdown. Cases are decided with [`decide_batch`] (every core, answers in order).
//!
//! A replay knows first decisions only: when the candidate retries a run the baseline gave up
//! on, what that new run would have done is unknown. Such chains are counted
//! (`ReplayReport::extra_runs`) and never simulated.

use std::collections::BTreeMap;
use std::io::BufRead;

use runretry_kit::{Case, Decision};

use crate::dagster_yaml::ConfigOverride;
use serde::Serialize;
use serde_json::Value;

use crate::batch::decide_batch;
use crate::decision_record::{DecisionRecord, RecordedAnswer};
use crate::error::Error;
use crate::fallback::Deployment;

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
    /// The case.
    pub case: Case,
    /// The recorded answer: a decision, or the kind of error the policy failed with. `None`
    /// for a plain case line.
    pub recorded: Option<Result<Decision, String>>,
}

/// Read a JSON Lines file of cases or of decision-log records (they may be mixed). Records of
/// other endpoints (`select-steps`) and records without a case (a request that did not parse)
/// are skipped: nothing to replay. A bad line is an error naming the line and the field.
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
            entries.push(ReplayEntry { line, case: Case::from_json(&at, &text)?, recorded: None });
            continue;
        }
        let record: DecisionRecord = serde_path_to_error::deserialize(value)
            .map_err(|e| Error::bad_input(format!("{at}: {}: {}", e.path(), e.inner())))?;
        let RecordedAnswer::Decide { decision, error, .. } = record.answer else {
            other_endpoints += 1;
            continue;
        };
        let Some(case) = record.case else {
            without_case += 1;
            continue;
        };
        case.validate().map_err(|(path, message)| Error::bad_input(format!("{at}: case.{path}: {message}")))?;
        let recorded = match (decision, error) {
            (Some(decision), _) => Ok(decision),
            (None, Some(error)) => Err(error.kind),
            (None, None) => {
                return Err(Error::bad_input(format!("{at}: a decision-log record with neither decision nor error")))
            }
        };
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
    /// The job's name (`(no job)` when the run names none).
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
    let cand_answers = decide_all(entries, candidate, config, jobs, progress)?;
    let (base_answers, baseline_name) = match baseline {
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
    let mut report = ReplayReport {
        candidate: candidate.policy().map(|p| p.name().to_string()).unwrap_or_default(),
        baseline: baseline_name,
        ..ReplayReport::default()
    };
    let mut jobs: BTreeMap<String, JobReport> = BTreeMap::new();
    for ((entry, cand), base) in entries.iter().zip(&cand_answers).zip(&base_answers) {
        let difference = compare_answers(cand.as_ref().map_err(String::as_str), base.as_ref().map_err(String::as_str));
        report.cases += 1;
        report.candidate_errors += usize::from(cand.is_err());
        report.baseline_errors += usize::from(base.is_err());
        report.extra_runs += usize::from(difference.extra_run);
        report.avoided_runs += usize::from(difference.avoided_run);
        report.extra_steps += difference.extra_steps;
        report.fewer_steps += difference.fewer_steps;
        report.added_delay_seconds += difference.added_delay_seconds;
        let job_name = entry.case.run.job.clone().unwrap_or_else(|| "(no job)".into());
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
            count(&mut report.kinds, kind, &entry.case.run.run_id);
            count(&mut job.kinds, kind, &entry.case.run.run_id);
        }
    }
    report.jobs = jobs.into_values().collect();
    Ok(report)
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

/// Every entry decided by `deployment`, in order; a failure is kept as its error kind.
fn decide_all(
    entries: &[ReplayEntry],
    deployment: &Deployment,
    config: ConfigOverride,
    jobs: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<Result<Decision, String>>, Error> {
    // The batch runner reads JSON Lines: hand it the cases as such.
    let mut lines = String::new();
    for entry in entries {
        lines.push_str(&serde_json::to_string(&entry.case).expect("cases serialise"));
        lines.push('\n');
    }
    let mut answers = Vec::with_capacity(entries.len());
    decide_batch(lines.as_bytes(), "replay", deployment, config, jobs, |answer| {
        progress();
        answers.push(answer.result.map_err(|error| error.kind().to_string()));
        true
    })?;
    Ok(answers)
}
