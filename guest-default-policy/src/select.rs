//! Step selection for a re-execution (run-retries.md §9, §10, §16): a port of Dagster's
//! `_derive_state_of_past_run`, keeping its tracking-dict model so mapped-step corner cases come
//! out exactly as Dagster's do.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::model::{Run, RunStatus, Step, StepStatus, Strategy};

/// Raised for FROM_FAILURE on a run that neither failed nor was cancelled.
pub const NOT_FAILED_ERROR: &str =
    "DagsterInvariantViolationError: Cannot reexecute from failure a run that is not failed or canceled";
/// Raised when FROM_FAILURE finds nothing to re-run.
pub const NOTHING_TO_RETRY_ERROR: &str =
    "DagsterInvalidSubsetError: No steps needed to be retried in the failed run.";
/// Raised when FROM_ASSET_FAILURE finds nothing to re-run: always, for the op jobs the case
/// format describes (it carries no asset materialisations).
pub const NO_ASSETS_ERROR: &str =
    "DagsterInvalidSubsetError: No assets or asset checks needed to be retried in the failed run.";

/// The steps a re-execution of `run` with `strategy` runs, sorted; or Dagster's error.
pub fn select_steps(run: &Run, strategy: Strategy) -> Result<Vec<String>, String> {
    match strategy {
        // ALL_STEPS: the whole plan, whatever the parent's status or step subset (§10, §16).
        Strategy::AllSteps => {
            let all: BTreeSet<&str> = run.steps.iter().map(|s| s.key.as_str()).collect();
            Ok(all.into_iter().map(str::to_string).collect())
        }
        Strategy::FromAssetFailure => Err(NO_ASSETS_ERROR.to_string()),
        Strategy::FromFailure => from_failure(run),
    }
}

fn from_failure(run: &Run) -> Result<Vec<String>, String> {
    if !matches!(run.status, RunStatus::Failure | RunStatus::Canceled) {
        return Err(NOT_FAILED_ERROR.to_string());
    }
    let selected = from_failure_selection(run);
    // Dagster derives the parent's own state first, then loads each ancestor (§16).
    crate::group::check_ancestors_exist(run)?;
    if selected.is_empty() {
        return Err(NOTHING_TO_RETRY_ERROR.to_string());
    }
    Ok(selected)
}

/// How Dagster refers to a step: plain `name`, unresolved `name[?]`, or resolved `name[k]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Handle {
    Plain(String),
    Unresolved(String),
    Resolved(String, String),
}

impl Handle {
    fn parse(key: &str) -> Handle {
        if let Some(body) = key.strip_suffix(']') {
            if let Some(open) = body.rfind('[') {
                let (name, mapping_key) = (&body[..open], &body[open + 1..]);
                return if mapping_key == "?" {
                    Handle::Unresolved(name.to_string())
                } else {
                    Handle::Resolved(name.to_string(), mapping_key.to_string())
                };
            }
        }
        Handle::Plain(key.to_string())
    }

    fn key(&self) -> String {
        match self {
            Handle::Plain(name) => name.clone(),
            Handle::Unresolved(name) => format!("{name}[?]"),
            Handle::Resolved(name, k) => format!("{name}[{k}]"),
        }
    }

    /// Resolved instances are tracked under their unresolved form (`_update_tracking_dict`).
    fn tracking_key(&self) -> String {
        match self {
            Handle::Resolved(name, _) => format!("{name}[?]"),
            other => other.key(),
        }
    }
}

/// Dagster's `TrackingDict`: tracking key -> handles seen under it.
#[derive(Default)]
struct Tracking(BTreeMap<String, BTreeSet<Handle>>);

impl Tracking {
    fn add(&mut self, handle: Handle) {
        self.0.entry(handle.tracking_key()).or_default().insert(handle);
    }

    /// `_in_tracking_dict`: a resolved handle must itself be present; any other handle only
    /// needs its key, so `x[?]` counts as present when any instance is.
    fn contains(&self, handle: &Handle) -> bool {
        match handle {
            Handle::Resolved(..) => {
                self.0.get(&handle.tracking_key()).is_some_and(|set| set.contains(handle))
            }
            _ => self.0.contains_key(&handle.key()),
        }
    }

    fn has_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// `_copy_from_tracking_dict`.
    fn copy_from(&mut self, src: &Tracking, handle: &Handle) {
        let key = handle.tracking_key();
        if let Some(set) = src.0.get(&key) {
            self.0.entry(key).or_default().extend(set.iter().cloned());
        }
    }
}

/// What the parent's event log says, in Dagster's tracking form.
#[derive(Default)]
struct ParentLog {
    all: Tracking,
    failed: Tracking,
    succeeded: Tracking,
    skipped: Tracking,
    interrupted: Tracking,
}

impl ParentLog {
    fn from_plan(steps: &[Step]) -> Self {
        let mut log = ParentLog::default();
        for step in steps {
            if step.status == StepStatus::Mapped {
                let name = match Handle::parse(&step.key) {
                    Handle::Unresolved(name) => name,
                    Handle::Plain(name) | Handle::Resolved(name, _) => name,
                };
                for (mapping_key, status) in &step.instances {
                    log.record(Handle::Resolved(name.clone(), mapping_key.clone()), *status);
                }
            } else {
                log.record(Handle::parse(&step.key), step.status);
            }
        }
        // Logged, but neither failed, succeeded nor skipped: interrupted.
        let mut interrupted = Tracking::default();
        for handle in log.all.0.values().flatten() {
            if !log.failed.contains(handle)
                && !log.succeeded.contains(handle)
                && !log.skipped.contains(handle)
            {
                interrupted.add(handle.clone());
            }
        }
        log.interrupted = interrupted;
        log
    }

    fn record(&mut self, handle: Handle, status: StepStatus) {
        match status {
            StepStatus::NotStarted | StepStatus::Mapped => return,
            StepStatus::Failure | StepStatus::ResourceInitFailure => self.failed.add(handle.clone()),
            StepStatus::Success => self.succeeded.add(handle.clone()),
            StepStatus::Skipped => self.skipped.add(handle.clone()),
            StepStatus::InProgress => {}
        }
        self.all.add(handle);
    }
}

/// The FROM_FAILURE retry set, sorted (empty when nothing needs re-running).
pub fn from_failure_selection(run: &Run) -> Vec<String> {
    let log = ParentLog::from_plan(&run.steps);
    // The parent's own step subset bounds both the iterated steps and their dependencies.
    let subset: Option<HashSet<&str>> = run
        .step_keys_to_execute
        .as_ref()
        .filter(|keys| !keys.is_empty())
        .map(|keys| keys.iter().map(String::as_str).collect());
    let in_subset = |key: &str| subset.as_ref().is_none_or(|s| s.contains(key));

    let mut to_retry = Tracking::default();
    for step in topological(&run.steps) {
        if !in_subset(&step.key) {
            continue;
        }
        let handle = Handle::parse(&step.key);
        // A step skipped in the parent is never retried, even below a retried step.
        if log.skipped.contains(&handle) {
            continue;
        }
        if log.failed.contains(&handle) {
            to_retry.copy_from(&log.failed, &handle);
        }
        if log.interrupted.contains(&handle) {
            to_retry.copy_from(&log.interrupted, &handle);
        }
        let deps: Vec<&str> =
            step.upstream.iter().map(String::as_str).filter(|u| in_subset(u)).collect();
        let never_ran = !log.all.contains(&handle);
        // An unresolved mapped step whose upstream ran is not "missing": its instances that
        // never started are dropped (surprising, but Dagster's behaviour).
        let upstream_ran = matches!(handle, Handle::Unresolved(_))
            && deps.iter().any(|d| log.skipped.has_key(d) || log.succeeded.has_key(d));
        if never_ran && !upstream_ran {
            to_retry.add(handle.clone());
        }
        let retrying: BTreeSet<&str> = deps.into_iter().filter(|d| to_retry.has_key(d)).collect();
        for dep in retrying {
            let dep_handles: Vec<Handle> = to_retry.0[dep].iter().cloned().collect();
            let all_resolved = dep_handles.iter().all(|h| matches!(h, Handle::Resolved(..)));
            match &handle {
                Handle::Unresolved(name) if all_resolved => {
                    for dep_handle in dep_handles {
                        if let Handle::Resolved(_, k) = dep_handle {
                            to_retry.add(Handle::Resolved(name.clone(), k));
                        }
                    }
                }
                _ => to_retry.add(handle.clone()),
            }
        }
    }
    let keys: BTreeSet<String> = to_retry.0.values().flatten().map(Handle::key).collect();
    keys.into_iter().collect()
}

/// Plan steps in dependency order (Kahn's algorithm, ties in plan order). Steps caught in a
/// cycle, which a valid plan never has, follow in plan order rather than being lost.
fn topological(steps: &[Step]) -> Vec<&Step> {
    let index: HashMap<&str, usize> =
        steps.iter().enumerate().map(|(i, s)| (s.key.as_str(), i)).collect();
    let mut pending: Vec<usize> = vec![0; steps.len()];
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for up in &step.upstream {
            if let Some(&u) = index.get(up.as_str()) {
                pending[i] += 1;
                downstream[u].push(i);
            }
        }
    }
    let mut ready: std::collections::VecDeque<usize> =
        (0..steps.len()).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(steps.len());
    let mut placed = vec![false; steps.len()];
    while let Some(i) = ready.pop_front() {
        order.push(i);
        placed[i] = true;
        for &d in &downstream[i] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    order.extend((0..steps.len()).filter(|&i| !placed[i]));
    order.into_iter().map(|i| &steps[i]).collect()
}
