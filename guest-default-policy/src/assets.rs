//! FROM_ASSET_FAILURE (docs/dagster-semantics.md §10; `docs/dagster-asset-reexecution.md` §2): a
//! port of Dagster 1.13.29's `RunDomain.get_keys_to_reexecute` and of the forms it had before
//! (docs/dagster-versions.md §3.1–§3.5), plus the check that building the new run's job subset
//! does (`_subset_assets_defs`), so a selection Dagster cannot launch is refused here with
//! Dagster's message rather than answered.

use std::collections::{BTreeSet, HashSet};

use runretry_kit::{Run, Selection, Step, StepKey};

use crate::rules::{AssetKeys, Rules};
use crate::select::{job_plan, Relaunch};

/// Raised when FROM_ASSET_FAILURE finds nothing to re-run (always, for an op job: its plan
/// carries no asset or check keys).
pub const NO_ASSETS_ERROR: &str =
    "DagsterInvalidSubsetError: No assets or asset checks needed to be retried in the failed run.";

/// The asset key a check key `"<asset key>:<check name>"` belongs to. Check names are
/// identifiers, so the last `:` separates them even when an asset key holds a `:`.
pub fn asset_of_check(check: &str) -> &str {
    check.rsplit_once(':').map_or(check, |(asset, _)| asset)
}

/// Asset and check keys, sorted as the selection lists them.
type Keys<'a> = (BTreeSet<&'a str>, BTreeSet<&'a str>);

/// What the new run re-executes under `rules`: the assets and checks that did not complete,
/// with the steps that own them; or Dagster's refusal.
pub fn from_asset_failure(run: &Run, rules: &Rules) -> Result<Relaunch, String> {
    let candidates = match rules.asset_keys {
        AssetKeys::EverySnapshotStep => run.steps.iter().collect(),
        AssetKeys::PlannedNotDone | AssetKeys::PlannedSteps => planned_steps(run),
    };
    let (assets, checks) = match rules.asset_keys {
        AssetKeys::PlannedNotDone => skipped_keys(run, &candidates),
        AssetKeys::EverySnapshotStep | AssetKeys::PlannedSteps => keys_to_reexecute(run, &candidates),
    };
    if assets.is_empty() && checks.is_empty() {
        if rules.empty_selection_fails {
            return Err(NO_ASSETS_ERROR.to_string());
        }
        // Before 1.11.3 the job selector reads the empty selection as none: the whole job runs
        // (or the run's op selection). Its plan is the run's unless the run was an asset subset.
        let whole_job = run.asset_selection.is_some();
        let steps = if whole_job { Vec::new() } else { job_plan(run) };
        let selection = Selection { steps, asset_selection: None, asset_check_selection: None };
        return Ok(Relaunch { selection, whole_job });
    }
    if let Some(step) = run.steps.iter().find(|s| is_partly_selected(s, &assets, &checks)) {
        return Err(cannot_subset_error(step, &assets, &checks));
    }
    let steps = candidates
        .iter()
        .filter(|s| {
            s.assets.iter().any(|a| assets.contains(a.as_str())) || s.checks.iter().any(|c| checks.contains(c.as_str()))
        })
        .map(|s| s.key.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let owned = |set: BTreeSet<&str>| Some(set.into_iter().map(str::to_string).collect());
    let selection = Selection { steps, asset_selection: owned(assets), asset_check_selection: owned(checks) };
    Ok(Relaunch { selection, whole_job: false })
}

/// `get_keys_to_reexecute` (1.10.15 on) over `steps`: the keys that did not complete, a failed
/// blocking check sending its asset and checks again, and each selected step's required keys.
fn keys_to_reexecute<'a>(run: &'a Run, steps: &[&'a Step]) -> Keys<'a> {
    let log = EntityLog::of(run);
    let mut assets = BTreeSet::new();
    let mut checks = BTreeSet::new();
    for step in steps {
        let needed_assets: Vec<&str> = step.assets.iter().map(String::as_str).filter(|a| !log.is_done(a)).collect();
        let needed_checks: Vec<&str> =
            step.checks.iter().map(String::as_str).filter(|c| log.check_needs_rerun(c)).collect();
        if needed_assets.is_empty() && needed_checks.is_empty() {
            continue;
        }
        assets.extend(needed_assets);
        checks.extend(needed_checks);
        // Required outputs come along whatever their state: the step cannot run without them.
        for key in &step.required_keys {
            if step.checks.contains(key) {
                checks.insert(key.as_str());
            } else {
                assets.insert(key.as_str());
            }
        }
    }
    (assets, checks)
}

/// `_get_skipped_entity_keys` (1.10.12–1.10.14): the planned assets not materialised and the
/// planned checks never evaluated. A failed check, blocking or not, counts as evaluated.
fn skipped_keys<'a>(run: &'a Run, planned: &[&'a Step]) -> Keys<'a> {
    let materialized: HashSet<&str> = run.materialized_assets.iter().map(String::as_str).collect();
    let evaluated: HashSet<&str> = run.check_evaluations.iter().map(|e| e.check.as_str()).collect();
    let assets = planned.iter().flat_map(|s| &s.assets).map(String::as_str).filter(|a| !materialized.contains(a));
    let checks = planned.iter().flat_map(|s| &s.checks).map(String::as_str).filter(|c| !evaluated.contains(c));
    (assets.collect(), checks.collect())
}

/// The steps whose keys are planned: those in the run's `step_keys_to_execute` (none or empty:
/// every step). A mapped step `name[?]` is planned when any instance `name[k]` is.
fn planned_steps(run: &Run) -> Vec<&Step> {
    let Some(keys) = run.step_keys_to_execute.as_ref().filter(|k| !k.is_empty()) else {
        return run.steps.iter().collect();
    };
    // Indexed once: a subset of a large plan is looked up once per step.
    let keys: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let names: HashSet<&str> = keys.iter().map(|k| StepKey::parse(k).name()).collect();
    run.steps
        .iter()
        .filter(|step| match StepKey::parse(&step.key) {
            StepKey::Unresolved(name) => names.contains(name),
            _ => keys.contains(step.key.as_str()),
        })
        .collect()
}

/// What the run's event log says about its assets and checks.
struct EntityLog<'a> {
    materialized: HashSet<&'a str>,
    /// Checks with an evaluation that was not a blocking failure.
    executed_checks: HashSet<&'a str>,
    /// Assets with a failed blocking check: materialised or not, they run again.
    blocked_assets: HashSet<&'a str>,
}

impl<'a> EntityLog<'a> {
    fn of(run: &'a Run) -> Self {
        let mut log = EntityLog {
            materialized: run.materialized_assets.iter().map(String::as_str).collect(),
            executed_checks: HashSet::new(),
            blocked_assets: HashSet::new(),
        };
        for evaluation in &run.check_evaluations {
            if evaluation.is_blocking_failure() {
                log.blocked_assets.insert(asset_of_check(&evaluation.check));
            } else {
                // A failed non-blocking check counts as executed (Dagster issue #30105).
                log.executed_checks.insert(&evaluation.check);
            }
        }
        log
    }

    fn is_done(&self, asset: &str) -> bool {
        self.materialized.contains(asset) && !self.blocked_assets.contains(asset)
    }

    fn check_needs_rerun(&self, check: &str) -> bool {
        !self.executed_checks.contains(check) || self.blocked_assets.contains(asset_of_check(check))
    }
}

/// A step that cannot be subset, some but not all of whose keys are selected: Dagster fails to
/// build such a job.
fn is_partly_selected(step: &Step, assets: &BTreeSet<&str>, checks: &BTreeSet<&str>) -> bool {
    if step.can_subset != Some(false) {
        return false;
    }
    let selected_assets = step.assets.iter().filter(|a| assets.contains(a.as_str())).count();
    let selected_checks = step.checks.iter().filter(|c| checks.contains(c.as_str())).count();
    selected_assets + selected_checks > 0
        && (selected_assets < step.assets.len() || selected_checks < step.checks.len())
}

/// `_subset_assets_defs`' error, keys shown as Dagster's reprs, sorted as Dagster sorts them.
fn cannot_subset_error(step: &Step, assets: &BTreeSet<&str>, checks: &BTreeSet<&str>) -> String {
    let asset_list = |keys: &mut dyn Iterator<Item = &String>| {
        let mut keys: Vec<Vec<&str>> = keys.map(|k| k.split('/').collect()).collect();
        keys.sort();
        let shown: Vec<String> = keys.iter().map(|parts| asset_key_repr(parts)).collect();
        format!("[{}]", shown.join(", "))
    };
    let check_list = |keys: &mut dyn Iterator<Item = &String>| {
        let mut keys: Vec<(Vec<&str>, &str)> = keys
            .map(|k| {
                let name = k.rsplit_once(':').map_or("", |(_, name)| name);
                (asset_of_check(k).split('/').collect(), name)
            })
            .collect();
        keys.sort();
        let shown: Vec<String> = keys
            .iter()
            .map(|(asset, name)| {
                format!("AssetCheckKey(asset_key={}, name={})", asset_key_repr(asset), python_repr(name))
            })
            .collect();
        format!("[{}]", shown.join(", "))
    };
    let node = StepKey::parse(&step.key).name().to_string();
    format!(
        "DagsterInvalidSubsetError: When building job, the AssetsDefinition {} contains asset keys {} and check \
         keys {}, but attempted to select only assets {} and checks {}. This AssetsDefinition does not support \
         subsetting. Please select all asset and check keys produced by this asset.\n\nIf using an AssetSelection, \
         you may use required_multi_asset_neighbors() to select any remaining assets, for example:\n\
         AssetSelection.assets('my_asset').required_multi_asset_neighbors()",
        python_repr(&node),
        asset_list(&mut step.assets.iter()),
        check_list(&mut step.checks.iter()),
        asset_list(&mut step.assets.iter().filter(|a| assets.contains(a.as_str()))),
        check_list(&mut step.checks.iter().filter(|c| checks.contains(c.as_str()))),
    )
}

/// `repr(AssetKey([...]))`: `AssetKey(['a', 'b'])`.
fn asset_key_repr(parts: &[&str]) -> String {
    let parts: Vec<String> = parts.iter().map(|p| python_repr(p)).collect();
    format!("AssetKey([{}])", parts.join(", "))
}

/// Python's `repr` of a str: single quotes, unless the text holds one and no double quote.
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reprs_match_python() {
        assert_eq!(python_repr("a"), "'a'");
        assert_eq!(python_repr("it's"), "\"it's\"");
        assert_eq!(python_repr("both'\""), "'both\\'\"'");
        assert_eq!(asset_key_repr(&["a", "b"]), "AssetKey(['a', 'b'])");
        assert_eq!(asset_of_check("ns/a:b:ok"), "ns/a:b");
    }
}
