//! What a re-execution runs (docs/dagster-semantics.md §9, §10, §16). FROM_FAILURE is a port of
//! Dagster's `_derive_state_of_past_run`, keeping its tracking-dict model so mapped-step corner
//! cases come out exactly as Dagster's do; FROM_ASSET_FAILURE is in `assets`. FROM_FAILURE and
//! ALL_STEPS carry the failed run's asset selections over (§10, last point; before 1.12.0 only
//! the assets, `rules`).

use std::collections::{BTreeSet, HashMap, HashSet};

use runretry_kit::{Run, RunStatus, Selection, Step, StepKey, StepStatus, Strategy};

pub use crate::assets::NO_ASSETS_ERROR;
use crate::rules::Rules;

/// Raised for FROM_FAILURE on a run that neither failed nor was cancelled.
pub const NOT_FAILED_ERROR: &str =
    "DagsterInvariantViolationError: Cannot reexecute from failure a run that is not failed or canceled";
/// Raised when FROM_FAILURE finds nothing to re-run.
pub const NOTHING_TO_RETRY_ERROR: &str = "DagsterInvalidSubsetError: No steps needed to be retried in the failed run.";

/// What a re-execution of `run` with `strategy` runs under the newest release's rules, steps
/// sorted; or Dagster's error.
pub fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String> {
    relaunch(run, strategy, &Rules::newest()).map(|relaunch| relaunch.selection)
}

/// A re-execution as one release launches it.
#[derive(Clone, Debug, PartialEq)]
pub struct Relaunch {
    /// What it runs. When `whole_job` is set, `steps` is as much of it as the case shows.
    pub selection: Selection,
    /// The release runs the whole job, not the failed run's subset, and the case (which holds
    /// only that subset's plan) cannot list its steps: before 1.11.3 a FROM_ASSET_FAILURE with
    /// nothing to re-run, before 1.12.0 an ALL_STEPS of a run with a check selection.
    pub whole_job: bool,
}

impl Relaunch {
    fn of(selection: Selection) -> Self {
        Relaunch { selection, whole_job: false }
    }
}

/// What a re-execution of `run` with `strategy` runs under `rules`, or that release's error.
pub fn relaunch(run: &Run, strategy: Strategy, rules: &Rules) -> Result<Relaunch, String> {
    match strategy {
        // ALL_STEPS: the whole plan, whatever the parent's status or step subset (§10, §16).
        Strategy::AllSteps => {
            let mut relaunch = Relaunch::of(carried_selections(run, job_plan(run), rules));
            // Before 1.12.0 the job is re-resolved without the check selection, so it runs every
            // check of its assets (or, with no assets, the whole job): beyond the run's plan.
            relaunch.whole_job = !rules.keeps_check_selection && run.asset_check_selection.is_some();
            Ok(relaunch)
        }
        Strategy::FromAssetFailure => crate::assets::from_asset_failure(run, rules),
        Strategy::FromFailure => {
            from_failure(run, rules).map(|steps| Relaunch::of(carried_selections(run, steps, rules)))
        }
    }
}

/// The failed run's asset selections, as `retry_run` passes them to the new run's job: both
/// (1.12.0 on); before, the assets only, an empty list read as none (docs/dagster-versions.md §3.7).
fn carried_selections(run: &Run, steps: Vec<String>, rules: &Rules) -> Selection {
    if rules.keeps_check_selection {
        return Selection::of_steps(run, steps);
    }
    Selection {
        steps,
        asset_selection: run.asset_selection.clone().filter(|assets| !assets.is_empty()),
        asset_check_selection: None,
    }
}

/// The job's own plan, as Dagster builds it for ALL_STEPS: with no known state, so every mapped
/// step is `name[?]`. A failed run that was itself a re-execution was planned with its parent's
/// mappings and lists resolved instances `name[k]` too; they fold into `name[?]`.
pub(crate) fn job_plan(run: &Run) -> Vec<String> {
    let keys: BTreeSet<String> = run
        .steps
        .iter()
        .map(|step| match StepKey::parse(&step.key) {
            StepKey::Resolved(name, _) => StepKey::Unresolved(name).to_string(),
            _ => step.key.clone(),
        })
        .collect();
    keys.into_iter().collect()
}

fn from_failure(run: &Run, rules: &Rules) -> Result<Vec<String>, String> {
    if !matches!(run.status, RunStatus::Failure | RunStatus::Canceled) {
        return Err(NOT_FAILED_ERROR.to_string());
    }
    let selected = from_failure_selection(run);
    // Dagster derives the parent's own state first, then loads each ancestor (§16).
    crate::group::check_ancestors_exist(run)?;
    // Before 1.11.3 nothing stops an empty selection: the new run is launched with no steps.
    if selected.is_empty() && rules.empty_selection_fails {
        return Err(NOTHING_TO_RETRY_ERROR.to_string());
    }
    Ok(selected)
}

/// How Dagster refers to a step (the kit's `StepKey`): borrowed from the plan, so tracking
/// allocates nothing per step.
type Handle<'a> = StepKey<'a>;

/// What tracking needs of a handle beyond the grammar.
trait Tracked<'a> {
    /// The key as a string, `name[?]` and `name[k]` included.
    fn key(&self) -> String;
    /// Resolved instances are tracked under their unresolved form (`_update_tracking_dict`).
    fn tracking_key(&self) -> TrackKey<'a>;
}

impl<'a> Tracked<'a> for Handle<'a> {
    fn key(&self) -> String {
        self.to_string()
    }

    fn tracking_key(&self) -> TrackKey<'a> {
        match *self {
            Handle::Plain(key) => TrackKey { name: key, mapped: false },
            Handle::Unresolved(name) | Handle::Resolved(name, _) => TrackKey { name, mapped: true },
        }
    }
}

/// A tracking-dict key: a plan key string, with `name[?]` held as `(name, mapped)`. A plan key
/// `name[k]` stays a plain string here, as in Dagster, where it never equals a tracking key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TrackKey<'a> {
    name: &'a str,
    mapped: bool,
}

impl<'a> TrackKey<'a> {
    fn of_plan_key(key: &'a str) -> Self {
        match key.strip_suffix("[?]") {
            Some(name) => TrackKey { name, mapped: true },
            None => TrackKey { name: key, mapped: false },
        }
    }
}

/// The handles tracked under one key: almost always one, so no allocation for that case.
#[derive(Clone, Debug, Default)]
enum Entries<'a> {
    #[default]
    Empty,
    One(Handle<'a>),
    Many(Vec<Handle<'a>>),
}

impl<'a> Entries<'a> {
    fn insert(&mut self, handle: Handle<'a>) {
        match self {
            Entries::Empty => *self = Entries::One(handle),
            Entries::One(first) if *first != handle => *self = Entries::Many(vec![*first, handle]),
            Entries::One(_) => {}
            Entries::Many(handles) => {
                if !handles.contains(&handle) {
                    handles.push(handle);
                }
            }
        }
    }

    fn contains(&self, handle: &Handle<'a>) -> bool {
        match self {
            Entries::Empty => false,
            Entries::One(one) => one == handle,
            Entries::Many(handles) => handles.contains(handle),
        }
    }

    fn as_slice(&self) -> &[Handle<'a>] {
        match self {
            Entries::Empty => &[],
            Entries::One(one) => std::slice::from_ref(one),
            Entries::Many(handles) => handles,
        }
    }
}

/// Dagster's `TrackingDict`: tracking key -> handles seen under it. A key is present exactly
/// when something was added under it.
struct Tracking<'a>(HashMap<TrackKey<'a>, Entries<'a>, Fnv>);

impl<'a> Tracking<'a> {
    fn with_capacity(capacity: usize) -> Self {
        Tracking(HashMap::with_capacity_and_hasher(capacity, Fnv))
    }

    fn add(&mut self, handle: Handle<'a>) {
        self.0.entry(handle.tracking_key()).or_default().insert(handle);
    }

    /// `_in_tracking_dict`: a resolved handle must itself be present; any other handle only
    /// needs its key, so `x[?]` counts as present when any instance is.
    fn contains(&self, handle: &Handle<'a>) -> bool {
        match self.0.get(&handle.tracking_key()) {
            None => false,
            Some(entries) => !matches!(handle, Handle::Resolved(..)) || entries.contains(handle),
        }
    }

    fn has_key(&self, key: TrackKey<'a>) -> bool {
        self.0.contains_key(&key)
    }

    fn get(&self, key: &TrackKey<'a>) -> &[Handle<'a>] {
        self.0.get(key).map_or(&[], Entries::as_slice)
    }

    /// `_copy_from_tracking_dict`.
    fn copy_from(&mut self, src: &Tracking<'a>, handle: &Handle<'a>) {
        for h in src.get(&handle.tracking_key()) {
            self.add(*h);
        }
    }

    fn handles(&self) -> impl Iterator<Item = &Handle<'a>> {
        self.0.values().flat_map(Entries::as_slice)
    }
}

/// FNV-1a: plan keys are short strings, and SipHash's DoS resistance buys nothing here.
#[derive(Default, Clone, Copy)]
struct Fnv;

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf29ce484222325)
    }
}

struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x100000001b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// What the parent's event log says, in Dagster's tracking form.
struct ParentLog<'a> {
    all: Tracking<'a>,
    failed: Tracking<'a>,
    succeeded: Tracking<'a>,
    skipped: Tracking<'a>,
    interrupted: Tracking<'a>,
}

impl<'a> ParentLog<'a> {
    fn from_plan(steps: &'a [Step]) -> Self {
        let tracking = || Tracking::with_capacity(steps.len());
        let mut log = ParentLog {
            all: tracking(),
            failed: Tracking::with_capacity(8),
            succeeded: tracking(),
            skipped: Tracking::with_capacity(8),
            interrupted: Tracking::with_capacity(8),
        };
        for step in steps {
            if step.status == StepStatus::Mapped {
                let name = Handle::parse(&step.key).name();
                for instance in &step.instances {
                    log.record(Handle::Resolved(name, &instance.mapping_key), instance.status);
                }
            } else {
                log.record(Handle::parse(&step.key), step.status);
            }
        }
        // Logged, but neither failed, succeeded nor skipped: interrupted.
        let mut interrupted = Tracking::with_capacity(8);
        for handle in log.all.handles() {
            if !log.failed.contains(handle) && !log.succeeded.contains(handle) && !log.skipped.contains(handle) {
                interrupted.add(*handle);
            }
        }
        log.interrupted = interrupted;
        log
    }

    fn record(&mut self, handle: Handle<'a>, status: StepStatus) {
        match status {
            StepStatus::NotStarted | StepStatus::Mapped => return,
            StepStatus::Failure | StepStatus::ResourceInitFailure => self.failed.add(handle),
            StepStatus::Success => self.succeeded.add(handle),
            StepStatus::Skipped => self.skipped.add(handle),
            StepStatus::InProgress => {}
        }
        self.all.add(handle);
    }
}

/// The FROM_FAILURE retry set, sorted (empty when nothing needs re-running).
pub fn from_failure_selection(run: &Run) -> Vec<String> {
    let log = ParentLog::from_plan(&run.steps);
    // The parent's own step subset bounds both the iterated steps and their dependencies.
    let subset: Option<HashSet<&str, Fnv>> = run
        .step_keys_to_execute
        .as_ref()
        .filter(|keys| !keys.is_empty())
        .map(|keys| keys.iter().map(String::as_str).collect());
    let in_subset = |key: &str| subset.as_ref().is_none_or(|s| s.contains(key));

    let mut to_retry = Tracking::with_capacity(steps_hint(run));
    let mut deps: Vec<TrackKey> = Vec::new();
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
        deps.clear();
        deps.extend(step.upstream.iter().filter(|u| in_subset(u)).map(|u| TrackKey::of_plan_key(u)));
        let never_ran = !log.all.contains(&handle);
        // An unresolved mapped step whose upstream ran is not "missing": its instances that
        // never started are dropped (surprising, but Dagster's behaviour).
        let upstream_ran = matches!(handle, Handle::Unresolved(_))
            && deps.iter().any(|d| log.skipped.has_key(*d) || log.succeeded.has_key(*d));
        if never_ran && !upstream_ran {
            to_retry.add(handle);
        }
        for (i, dep) in deps.iter().enumerate() {
            // `retrying_dep_keys` is a set: a dependency listed twice counts once.
            if deps[..i].contains(dep) {
                continue;
            }
            let dep_handles = to_retry.get(dep);
            if dep_handles.is_empty() {
                continue;
            }
            let all_resolved = dep_handles.iter().all(|h| matches!(h, Handle::Resolved(..)));
            match handle {
                Handle::Unresolved(name) if all_resolved => {
                    let keys: Vec<&str> = dep_handles
                        .iter()
                        .filter_map(|h| if let Handle::Resolved(_, k) = h { Some(*k) } else { None })
                        .collect();
                    for k in keys {
                        to_retry.add(Handle::Resolved(name, k));
                    }
                }
                _ => to_retry.add(handle),
            }
        }
    }
    let mut keys: Vec<String> = to_retry.handles().map(Handle::key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn steps_hint(run: &Run) -> usize {
    run.steps.len().min(1024)
}

/// Plan steps in dependency order (Kahn's algorithm, ties in plan order). Steps caught in a
/// cycle, which a valid plan never has, follow in plan order rather than being lost.
fn topological(steps: &[Step]) -> Vec<&Step> {
    let n = steps.len();
    let index: HashMap<&str, usize, Fnv> = steps.iter().enumerate().map(|(i, s)| (s.key.as_str(), i)).collect();
    // Edges upstream -> downstream in one flat array (CSR): no allocation per step.
    let mut pending = vec![0u32; n];
    let mut offsets = vec![0usize; n + 1];
    let mut edges: Vec<(usize, usize)> = Vec::with_capacity(n);
    for (i, step) in steps.iter().enumerate() {
        for up in &step.upstream {
            if let Some(&u) = index.get(up.as_str()) {
                pending[i] += 1;
                offsets[u + 1] += 1;
                edges.push((u, i));
            }
        }
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut downstream = vec![0usize; edges.len()];
    for (u, d) in edges {
        downstream[fill[u]] = d;
        fill[u] += 1;
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    order.reserve(n.saturating_sub(order.len()));
    let mut next = 0;
    while next < order.len() {
        let i = order[next];
        next += 1;
        for &d in &downstream[offsets[i]..offsets[i + 1]] {
            pending[d] -= 1;
            if pending[d] == 0 {
                order.push(d);
            }
        }
    }
    if order.len() < n {
        let mut placed = vec![false; n];
        for &i in &order {
            placed[i] = true;
        }
        order.extend((0..n).filter(|&i| !placed[i]));
    }
    order.into_iter().map(|i| &steps[i]).collect()
}
